"""The local mirror of Stripe invoices, charges and refunds (written only by services.sync)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.models.account import Account
from portal.models.mirror import StripeMirror
from portal.models.types import UTCDateTime


class Invoice(StripeMirror, db.Model):
    """An invoice as Stripe last described it; amounts in minor units of `currency`."""

    __tablename__ = "invoices"
    __stripe_id__ = "stripe_invoice_id"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    stripe_customer_id: Mapped[str] = mapped_column(String(255), index=True)
    stripe_subscription_id: Mapped[str | None] = mapped_column(String(255), index=True)
    number: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20))
    billing_reason: Mapped[str | None] = mapped_column(String(64))
    currency: Mapped[str] = mapped_column(String(3))
    subtotal: Mapped[int] = mapped_column(default=0)
    total: Mapped[int] = mapped_column(default=0)
    tax: Mapped[int] = mapped_column(default=0)
    amount_due: Mapped[int] = mapped_column(default=0)
    amount_paid: Mapped[int] = mapped_column(default=0)
    amount_remaining: Mapped[int] = mapped_column(default=0)
    attempt_count: Mapped[int] = mapped_column(default=0)
    period_start: Mapped[datetime | None] = mapped_column(UTCDateTime())
    period_end: Mapped[datetime | None] = mapped_column(UTCDateTime())
    next_payment_attempt: Mapped[datetime | None] = mapped_column(UTCDateTime())
    hosted_invoice_url: Mapped[str | None] = mapped_column(String(2000))
    invoice_pdf: Mapped[str | None] = mapped_column(String(2000))
    lines: Mapped[list] = mapped_column(JSON, default=list)

    account: Mapped[Account | None] = relationship()

    __table_args__ = (
        CheckConstraint(
            "status IN ('draft', 'open', 'paid', 'void', 'uncollectible')", name="status_known"
        ),
        CheckConstraint("amount_paid >= 0 AND amount_due >= 0", name="amounts_not_negative"),
    )


class Charge(StripeMirror, db.Model):
    """A charge (a captured card payment) that refunds are taken from."""

    __tablename__ = "charges"
    __stripe_id__ = "stripe_charge_id"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    stripe_customer_id: Mapped[str | None] = mapped_column(String(255), index=True)
    stripe_invoice_id: Mapped[str | None] = mapped_column(String(255), index=True)
    stripe_payment_intent_id: Mapped[str | None] = mapped_column(String(255), index=True)
    status: Mapped[str] = mapped_column(String(20))
    currency: Mapped[str] = mapped_column(String(3))
    amount: Mapped[int] = mapped_column()
    amount_captured: Mapped[int] = mapped_column(default=0)
    amount_refunded: Mapped[int] = mapped_column(default=0)

    __table_args__ = (
        CheckConstraint("amount_refunded <= amount_captured", name="refund_within_capture"),
        CheckConstraint("amount >= 0", name="amount_not_negative"),
    )


class Refund(StripeMirror, db.Model):
    """A refund of (part of) a charge."""

    __tablename__ = "refunds"
    __stripe_id__ = "stripe_refund_id"

    id: Mapped[int] = mapped_column(primary_key=True)
    stripe_charge_id: Mapped[str | None] = mapped_column(String(255), index=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    amount: Mapped[int] = mapped_column()
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (CheckConstraint("amount > 0", name="amount_positive"),)
