"""Billing the usage: mirrored subscription items and the usage reported to Stripe meters."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.models.subscription import Subscription
from portal.models.types import UTCDateTime, utcnow


class SubscriptionItem(db.Model):
    """One item of a mirrored subscription: the licensed plan price or a metered overage price.

    Written only by services.sync together with its subscription, so the items always match
    the subscription version the mirror holds.
    """

    __tablename__ = "subscription_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    subscription_id: Mapped[int] = mapped_column(
        ForeignKey("subscriptions.id", ondelete="CASCADE"), index=True)
    stripe_item_id: Mapped[str] = mapped_column(String(255), unique=True)
    stripe_price_id: Mapped[str | None] = mapped_column(String(255))
    usage_type: Mapped[str] = mapped_column(String(10), default="licensed")
    # The catalog meter a metered item bills (from its price's metadata), else None.
    meter_key: Mapped[str | None] = mapped_column(String(64))
    quantity: Mapped[int | None] = mapped_column()

    subscription: Mapped[Subscription] = relationship()

    __table_args__ = (
        CheckConstraint("usage_type IN ('licensed', 'metered')", name="usage_type_known"),
    )


class UsageReport(db.Model):
    """One meter event sent (or about to be sent) to Stripe for an account, meter and hour.

    The row is committed before Stripe is called, so its identifier is fixed: a retry sends
    the same identifier and Stripe refuses a second copy. Sequence 0 reports the window; a
    later sequence corrects it after late events (the difference for summed meters, the new
    value for `last` meters).
    """

    __tablename__ = "usage_reports"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    meter: Mapped[str] = mapped_column(String(64))
    window_start: Mapped[datetime] = mapped_column(UTCDateTime())
    sequence: Mapped[int] = mapped_column(default=0)
    identifier: Mapped[str] = mapped_column(String(100), unique=True)
    stripe_customer_id: Mapped[str] = mapped_column(String(255))
    # The meter event's value, and the window's value at Stripe once it is counted.
    value: Mapped[int] = mapped_column(BigInteger)
    window_value: Mapped[int] = mapped_column(BigInteger)
    event_timestamp: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    reported_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        UniqueConstraint("account_id", "meter", "window_start", "sequence",
                         name="uq_usage_reports_window_sequence"),
        CheckConstraint("status IN ('pending', 'reported')", name="status_known"),
        CheckConstraint("sequence >= 0", name="sequence_not_negative"),
    )
