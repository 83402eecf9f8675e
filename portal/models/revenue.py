"""Revenue figures the sync path keeps beside the mirror: each subscription's MRR, its changes."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import db
from portal.models.invoice import Charge, Invoice, Refund
from portal.models.subscription import Subscription
from portal.models.types import UTCDateTime, utcnow

# ChartMogul's five MRR movement categories (help.chartmogul.com, "Data Table and MRR Movements").
MOVEMENT_KINDS = ("new_business", "expansion", "contraction", "churn", "reactivation")


class MrrChange(db.Model):
    """One change of a subscription's MRR contribution, classified for its customer.

    Appended by services.sync (through services.mrr) and never updated: summing `new_mrr -
    old_mrr` over a customer's rows up to a moment gives its MRR at that moment.
    """

    __tablename__ = "mrr_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    stripe_customer_id: Mapped[str] = mapped_column(String(255))
    stripe_subscription_id: Mapped[str] = mapped_column(String(255), index=True)
    stripe_price_id: Mapped[str | None] = mapped_column(String(255))
    currency: Mapped[str] = mapped_column(String(3))
    # Stripe's time of the change (the event's `created`, or the subscription's end).
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    old_mrr: Mapped[int] = mapped_column()
    new_mrr: Mapped[int] = mapped_column()
    kind: Mapped[str] = mapped_column(String(16))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (
        CheckConstraint("old_mrr >= 0 AND new_mrr >= 0", name="mrr_not_negative"),
        CheckConstraint("old_mrr != new_mrr", name="mrr_changed"),
        CheckConstraint(
            "kind IN ('new_business', 'expansion', 'contraction', 'churn', 'reactivation')",
            name="kind_known"),
        # Monthly movements and MRR as of a date: one currency's rows in time order.
        Index("ix_mrr_changes_currency_at", "currency", "at", "kind", "old_mrr", "new_mrr"),
        Index("ix_mrr_changes_customer", "stripe_customer_id", "currency", "at"),
    )

    @property
    def movement(self) -> int:
        """Return the signed change in minor units."""
        return self.new_mrr - self.old_mrr


class SubscriptionMrr(db.Model):
    """What a subscription contributes to MRR now, and the discount terms it was computed with."""

    __tablename__ = "subscription_mrr"

    id: Mapped[int] = mapped_column(primary_key=True)
    stripe_subscription_id: Mapped[str] = mapped_column(String(255), unique=True)
    stripe_customer_id: Mapped[str] = mapped_column(String(255))
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    stripe_price_id: Mapped[str | None] = mapped_column(String(255))
    currency: Mapped[str] = mapped_column(String(3))
    mrr: Mapped[int] = mapped_column(default=0)
    # The discount ids applied when `mrr` was computed, and their coupon terms, so a payload
    # that lists discounts by id alone is priced without asking Stripe again.
    discount_ids: Mapped[str] = mapped_column(String(1000), default="")
    percent_off_bp: Mapped[int] = mapped_column(default=0)
    amount_off: Mapped[int] = mapped_column(default=0)
    discount_end: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (
        CheckConstraint("mrr >= 0", name="mrr_not_negative"),
        Index("ix_subscription_mrr_customer", "stripe_customer_id", "currency", "mrr"),
        # Subscriptions and customers by plan: one currency's paying rows, read from the index.
        Index("ix_subscription_mrr_plan", "currency", "stripe_price_id", "mrr",
              "stripe_customer_id"),
    )


# The revenue reports read one currency over a date range from each mirror table; these
# indexes hold every column those aggregates use, so the scans never touch the table rows.
REPORT_INDEXES = (
    Index("ix_charges_revenue", Charge.currency, Charge.stripe_created, Charge.status,
          Charge.amount_captured),
    Index("ix_refunds_revenue", Refund.currency, Refund.stripe_created, Refund.status,
          Refund.amount),
    # Recovered revenue reads only invoices paid after a failed attempt (attempt_count > 1).
    Index("ix_invoices_revenue", Invoice.currency, Invoice.attempt_count, Invoice.paid_at,
          Invoice.amount_paid),
    Index("ix_subscriptions_trial", Subscription.currency, Subscription.trial_end),
)
