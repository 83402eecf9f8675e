"""The health report that load balancers and operators poll.

Only the database makes the portal unable to serve: without it /health answers 503. Stripe's
reachability and the webhook backlog are reported beside it, never turning the answer to 503
(pages render from the mirror while Stripe is away). Stripe is never called per probe: its
reachability is checked in a background thread at most every STRIPE_HEALTH_INTERVAL seconds
and the last result is reported.
"""
from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version

from flask import Flask, current_app
from sqlalchemy import func, text
from sqlalchemy.exc import SQLAlchemyError

from portal.extensions import db
from portal.models import WebhookEvent
from portal.services.jobs import event_queue, uses_rq
from portal.services.stripe_client import StripeError, stripe_client, stripe_mode

_STARTED = time.monotonic()
# Inbox statuses that still need work.
BACKLOG_STATUSES = ("pending", "failed")


def portal_version() -> str:
    """Return the installed package version."""
    try:
        return version("billing-portal")
    except PackageNotFoundError:
        return "unknown"


class StripeReachability:
    """The last known answer to "does Stripe answer?", refreshed in the background."""

    def __init__(self, app: Flask):
        self.app = app
        self.lock = threading.Lock()
        self.checking = False
        self.state = {"status": "unknown", "checked_at": None, "latency_ms": None,
                      "error": None}
        self.checked_monotonic: float | None = None

    def report(self) -> dict:
        """Return the cached state, starting a background check when it is stale."""
        interval = float(self.app.config.get("STRIPE_HEALTH_INTERVAL") or 30)
        with self.lock:
            stale = (self.checked_monotonic is None
                     or time.monotonic() - self.checked_monotonic >= interval)
            if stale and not self.checking:
                self.checking = True
                threading.Thread(target=self.check, name="stripe-health", daemon=True).start()
            return dict(self.state)

    def check(self) -> None:
        """Ask Stripe for the account balance (a cheap read) and keep how it went."""
        started = time.perf_counter()
        state: dict = {"checked_at": datetime.now(UTC).isoformat(timespec="seconds")}
        try:
            with self.app.app_context():
                stripe_client().v1.balance.retrieve()
            state.update(status="ok", error=None)
        except (StripeError, RuntimeError) as exc:
            state.update(status="unreachable", error=type(exc).__name__)
        state["latency_ms"] = round((time.perf_counter() - started) * 1000, 1)
        with self.lock:
            self.state = state
            self.checked_monotonic = time.monotonic()
            self.checking = False


def stripe_reachability() -> dict:
    """Return the cached Stripe reachability of this process (checked in the background)."""
    app = current_app._get_current_object()
    if "stripe_client" not in app.extensions:
        return {"status": "not configured"}
    if stripe_mode(app.config) == "sandbox":
        # The embedded sandbox answers inside this process: nothing to reach.
        return {"status": "ok", "in_process": True}
    tracker = app.extensions.get("stripe_reachability")
    if tracker is None:
        tracker = app.extensions.setdefault("stripe_reachability", StripeReachability(app))
    return tracker.report()


def backlog_counts() -> dict[str, int]:
    """Return how many stored webhook events wait, by status (pending, failed)."""
    rows = db.session.execute(
        db.select(WebhookEvent.status, func.count())
        .where(WebhookEvent.status.in_(BACKLOG_STATUSES))
        .group_by(WebhookEvent.status))
    counts = dict.fromkeys(BACKLOG_STATUSES, 0)
    counts.update({status: count for status, count in rows})
    return counts


def queue_depth() -> int | None:
    """Return the jobs waiting on the RQ event queue, or None when events run inline."""
    if not uses_rq(current_app.config):
        return None
    try:
        return event_queue(current_app.config).count
    except Exception:  # noqa: BLE001 - an unreachable Redis is reported, not raised
        return None


def health_report() -> tuple[dict, bool]:
    """Return the health document and whether the database answered."""
    backlog: dict | None = None
    try:
        db.session.execute(text("SELECT 1"))
        database = "ok"
    except SQLAlchemyError as exc:
        db.session.rollback()
        database = f"error: {type(exc).__name__}"
    if database == "ok":
        try:
            backlog = backlog_counts()
        except SQLAlchemyError:
            # The database answers but has no inbox yet (not migrated): nothing to report.
            db.session.rollback()
    report = {
        "status": "ok" if database == "ok" else "unavailable",
        "version": portal_version(),
        "database": database,
        "stripe_mode": stripe_mode(current_app.config),
        "stripe": stripe_reachability(),
        "webhook_backlog": backlog,
        "queue_depth": queue_depth(),
        "uptime_s": round(time.monotonic() - _STARTED, 3),
    }
    return report, database == "ok"
