"""The audit log: who did what to money or access, and when."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.models.account import User
from portal.models.types import UTCDateTime, utcnow


class AuditEntry(db.Model):
    """One action on money or access (staff or customer); rows are only ever added.

    The database refuses UPDATE and DELETE on this table (triggers from 0013_admin_audit).
    """

    __tablename__ = "audit_entries"

    id: Mapped[int] = mapped_column(primary_key=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    # The customer account the action concerns, so an account's page and filter find it.
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    action: Mapped[str] = mapped_column(String(64))
    target_type: Mapped[str] = mapped_column(String(64))
    target_id: Mapped[str] = mapped_column(String(255))
    amount: Mapped[int | None] = mapped_column()
    currency: Mapped[str | None] = mapped_column(String(3))
    stripe_request_id: Mapped[str | None] = mapped_column(String(255))
    ip_address: Mapped[str | None] = mapped_column(String(45))
    details: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)

    actor: Mapped[User | None] = relationship()

    __table_args__ = (
        CheckConstraint(
            "(amount IS NULL) = (currency IS NULL)", name="amount_has_currency"
        ),
        # Keyset pages (newest id first) filtered by account, action or actor walk these.
        Index("ix_audit_entries_account_id_id", "account_id", "id"),
        Index("ix_audit_entries_action_id", "action", "id"),
        Index("ix_audit_entries_actor_id_id", "actor_id", "id"),
    )
