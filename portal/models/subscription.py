"""The local mirror of Stripe subscriptions (written only by services.sync)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.models.account import Account
from portal.models.mirror import StripeMirror
from portal.models.types import UTCDateTime

# Statuses in which the customer has (or is about to have) the plan's service.
LIVE_STATUSES = ("trialing", "active", "past_due", "incomplete")


class Subscription(StripeMirror, db.Model):
    """An account's subscription to one plan price, as Stripe last described it."""

    __tablename__ = "subscriptions"
    __stripe_id__ = "stripe_subscription_id"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    stripe_customer_id: Mapped[str] = mapped_column(String(255), index=True)
    status: Mapped[str] = mapped_column(String(32))
    stripe_price_id: Mapped[str | None] = mapped_column(String(255))
    stripe_item_id: Mapped[str | None] = mapped_column(String(255))
    quantity: Mapped[int] = mapped_column(default=1)
    currency: Mapped[str] = mapped_column(String(3))
    current_period_start: Mapped[datetime | None] = mapped_column(UTCDateTime())
    current_period_end: Mapped[datetime | None] = mapped_column(UTCDateTime())
    trial_end: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cancel_at_period_end: Mapped[bool] = mapped_column(default=False)
    cancel_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    canceled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cancellation_feedback: Mapped[str | None] = mapped_column(String(64))
    cancellation_comment: Mapped[str | None] = mapped_column(String(1000))
    latest_invoice_id: Mapped[str | None] = mapped_column(String(255))
    default_payment_method_id: Mapped[str | None] = mapped_column(String(255))

    account: Mapped[Account | None] = relationship()

    __table_args__ = (
        CheckConstraint(
            "status IN ('incomplete', 'incomplete_expired', 'trialing', 'active', "
            "'past_due', 'canceled', 'unpaid', 'paused')",
            name="status_known",
        ),
        CheckConstraint("quantity >= 0", name="quantity_not_negative"),
    )

    @property
    def is_live(self) -> bool:
        """Return True while the subscription gives (or is about to give) service."""
        return self.status in LIVE_STATUSES


class PaymentMethod(StripeMirror, db.Model):
    """A card attached to an account's Stripe customer."""

    __tablename__ = "payment_methods"
    __stripe_id__ = "stripe_payment_method_id"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    stripe_customer_id: Mapped[str | None] = mapped_column(String(255), index=True)
    brand: Mapped[str] = mapped_column(String(32))
    last4: Mapped[str] = mapped_column(String(4))
    exp_month: Mapped[int] = mapped_column()
    exp_year: Mapped[int] = mapped_column()
    fingerprint: Mapped[str | None] = mapped_column(String(64))

    account: Mapped[Account | None] = relationship()

    __table_args__ = (
        CheckConstraint("exp_month BETWEEN 1 AND 12", name="exp_month_valid"),
    )
