"""Stripe webhook events as received: stored raw first, processed after."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import db
from portal.models.types import UTCDateTime, utcnow


class WebhookEvent(db.Model):
    """One Stripe event, unique by its id, with how its processing went."""

    __tablename__ = "webhook_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    stripe_event_id: Mapped[str] = mapped_column(String(255), unique=True)
    type: Mapped[str] = mapped_column(String(100), index=True)
    api_version: Mapped[str | None] = mapped_column(String(64))
    stripe_created: Mapped[int] = mapped_column()
    payload: Mapped[str] = mapped_column(Text)
    # The Stripe customer the event's object belongs to, so an account lists its events.
    stripe_customer_id: Mapped[str | None] = mapped_column(String(255), index=True)
    # The Stripe id of the event's object, so a burst about one object is handled as one.
    object_id: Mapped[str | None] = mapped_column(String(255), index=True)
    status: Mapped[str] = mapped_column(String(20), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        CheckConstraint(
            "status IN ('pending', 'processed', 'failed', 'ignored')", name="status_known"
        ),
    )

    def transition(self, status: str, error: str | None = None) -> None:
        """Move the event to `status` after a processing attempt."""
        if status not in ("processed", "failed", "ignored"):
            raise ValueError(f"unknown event status {status!r}")
        self.status = status
        self.attempts += 1
        self.last_error = error
        self.processed_at = utcnow() if status != "failed" else None
