"""Outgoing mail waiting in the database until the transaction that queued it commits."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, CheckConstraint, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import db
from portal.models.types import UTCDateTime, utcnow

MAX_ATTEMPTS = 5


class QueuedMail(db.Model):
    """One message to send; `dedupe_key` makes a second queueing of the same notice a no-op."""

    __tablename__ = "queued_mail"

    id: Mapped[int] = mapped_column(primary_key=True)
    dedupe_key: Mapped[str | None] = mapped_column(String(255), unique=True)
    to: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(500))
    text: Mapped[str] = mapped_column(Text)
    html: Mapped[str | None] = mapped_column(Text)
    # [{"filename", "mimetype", "base64"}]
    attachments: Mapped[list] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(20), default="queued", index=True)
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        CheckConstraint("status IN ('queued', 'sent', 'failed')", name="status_known"),
    )

    def transition(self, status: str, error: str | None = None) -> None:
        """Record a delivery attempt's outcome."""
        if status not in ("sent", "failed"):
            raise ValueError(f"unknown mail status {status!r}")
        self.status = status
        self.attempts += 1
        self.last_error = error
        self.sent_at = utcnow() if status == "sent" else None
