"""The portal's own record of a refund an admin asked for (created before Stripe is called)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.models.account import User
from portal.models.invoice import Charge
from portal.models.types import UTCDateTime, utcnow

REASONS = ("duplicate", "fraudulent", "requested_by_customer")
# Where each status may go next. "awaiting_approval" waits for a second admin; "sending"
# is between the portal's commit and Stripe's answer (a retry reuses the same key);
# pending, succeeded, failed and canceled follow Stripe's refund.
MOVES = {
    "awaiting_approval": {"sending", "canceled"},
    "sending": {"pending", "succeeded", "failed", "canceled"},
    "pending": {"succeeded", "failed", "canceled"},
    "succeeded": {"failed"},
    "failed": set(),
    "canceled": set(),
}
# Statuses whose amount is taken from the charge before the mirror knows of it.
UNSENT = ("awaiting_approval", "sending")


class RefundRequest(db.Model):
    """A refund of (part of) a charge, from request through approval to Stripe's outcome."""

    __tablename__ = "refund_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    charge_id: Mapped[int] = mapped_column(ForeignKey("charges.id"), index=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    amount: Mapped[int] = mapped_column()
    currency: Mapped[str] = mapped_column(String(3))
    reason: Mapped[str] = mapped_column(String(32))
    note: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(20))
    # The confirmation form's one-time token: a second submit of the same form finds this row.
    form_token: Mapped[str] = mapped_column(String(64), unique=True)
    requested_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    approved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    retry_of_id: Mapped[int | None] = mapped_column(ForeignKey("refund_requests.id"))
    stripe_refund_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    stripe_request_id: Mapped[str | None] = mapped_column(String(255))
    failure_message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    charge: Mapped[Charge] = relationship()
    requested_by: Mapped[User] = relationship(foreign_keys=[requested_by_id])
    approved_by: Mapped[User | None] = relationship(foreign_keys=[approved_by_id])

    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint(
            "reason IN ('duplicate', 'fraudulent', 'requested_by_customer')", name="reason_known"
        ),
        CheckConstraint(
            "status IN ('awaiting_approval', 'sending', 'pending', 'succeeded', 'failed', "
            "'canceled')", name="status_known"
        ),
    )

    @property
    def idempotency_key(self) -> str:
        """Return the key every Stripe call for this refund carries."""
        return f"refund-{self.id}"

    def transition(self, status: str, failure_message: str | None = None) -> bool:
        """Move to `status` if the lifecycle allows it; return whether anything changed."""
        if status == self.status:
            return False
        if status not in MOVES[self.status]:
            raise ValueError(f"a refund cannot go from {self.status} to {status}")
        self.status = status
        if failure_message is not None:
            self.failure_message = failure_message
        self.updated_at = utcnow()
        return True
