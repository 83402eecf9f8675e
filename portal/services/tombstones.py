"""Deleted Stripe objects in the mirror: their tombstones, and the lock writers share."""
from __future__ import annotations

from sqlalchemy import inspect, text

from portal.extensions import db
from portal.models import MirrorTombstone


def lock_object(stripe_id: str) -> None:
    """Serialise every writer of one Stripe object, even before its row or tombstone exists.

    PostgreSQL takes a transaction-scoped advisory lock on the id; SQLite has one writer at a
    time anyway (a second one fails with "database is locked" and its event is run again).
    """
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:id))"),
                           {"id": stripe_id})


def tombstone(stripe_id: str) -> MirrorTombstone | None:
    """Return the tombstone of a Stripe object the mirror saw deleted, if any."""
    return db.session.scalar(db.select(MirrorTombstone).where(
        MirrorTombstone.stripe_id == stripe_id))


def bury(model, stripe_id: str, version: int | None) -> None:
    """Record (or move forward) the tombstone of a deleted object."""
    grave = tombstone(stripe_id)
    if grave is None:
        grave = MirrorTombstone(stripe_id=stripe_id, object_type=model.__tablename__, version=0)
        db.session.add(grave)
    grave.version = max(grave.version, version or 0)


def remove(row) -> None:
    """Delete a mirror row (a model may instead define `forget_stripe_object`)."""
    forget = getattr(row, "forget_stripe_object", None)
    if forget is not None:
        forget()
    elif inspect(row).persistent:
        db.session.delete(row)
