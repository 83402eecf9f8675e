"""The health report that load balancers and operators poll."""
from __future__ import annotations

import time
from importlib.metadata import PackageNotFoundError, version

from flask import current_app
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from portal.extensions import db
from portal.services.stripe_client import stripe_mode

_STARTED = time.monotonic()


def portal_version() -> str:
    """Return the installed package version."""
    try:
        return version("billing-portal")
    except PackageNotFoundError:
        return "unknown"


def health_report() -> tuple[dict, bool]:
    """Return the health document and whether the database answered."""
    try:
        db.session.execute(text("SELECT 1"))
        database = "ok"
    except SQLAlchemyError as exc:
        db.session.rollback()
        database = f"error: {type(exc).__name__}"
    report = {
        "status": "ok" if database == "ok" else "unavailable",
        "version": portal_version(),
        "database": database,
        "stripe_mode": stripe_mode(current_app.config),
        "uptime_s": round(time.monotonic() - _STARTED, 3),
    }
    return report, database == "ok"
