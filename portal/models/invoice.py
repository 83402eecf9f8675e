"""The local mirror of Stripe invoices, charges and refunds (written only by services.sync)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String
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
    number: Mapped[str | None] = mapped_column(String(64), index=True)
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
    # The buyer as Stripe froze it at finalization (name, email, address, tax ids).
    customer_name: Mapped[str | None] = mapped_column(String(255))
    customer_email: Mapped[str | None] = mapped_column(String(320))
    customer_address: Mapped[dict | None] = mapped_column(JSON)
    customer_tax_ids: Mapped[list] = mapped_column(JSON, default=list, server_default="[]")
    discount_total: Mapped[int] = mapped_column(default=0, server_default="0")
    # Tax per rate: [{"rate": id, "label": "VAT 20%", "amount": n, "taxable_amount": n}].
    taxes: Mapped[list] = mapped_column(JSON, default=list, server_default="[]")
    # The customer's balance before and after this invoice; negative is credit.
    starting_balance: Mapped[int] = mapped_column(default=0, server_default="0")
    ending_balance: Mapped[int | None] = mapped_column()
    finalized_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Why the last payment attempt failed (decline code and Stripe's message), if it did.
    last_payment_error_code: Mapped[str | None] = mapped_column(String(64))
    last_payment_error: Mapped[str | None] = mapped_column(String(500))

    account: Mapped[Account | None] = relationship()

    __table_args__ = (
        CheckConstraint(
            "status IN ('draft', 'open', 'paid', 'void', 'uncollectible')", name="status_known"
        ),
        CheckConstraint("amount_paid >= 0 AND amount_due >= 0", name="amounts_not_negative"),
        # Keyset pagination of an account's invoices walks this index, newest first.
        Index("ix_invoices_account_created", "account_id", "stripe_created", "id"),
    )

    @property
    def credit_applied(self) -> int:
        """Return how much of the customer's credit balance this invoice used."""
        if self.starting_balance >= 0:
            return 0
        return min(-self.starting_balance, max(self.total, 0))


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
    card_brand: Mapped[str | None] = mapped_column(String(32))
    card_last4: Mapped[str | None] = mapped_column(String(4))
    failure_code: Mapped[str | None] = mapped_column(String(64))
    failure_message: Mapped[str | None] = mapped_column(String(500))
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


class InvoicePayment(StripeMirror, db.Model):
    """Stripe's link between an invoice and a payment intent that (tried to) pay it."""

    __tablename__ = "invoice_payments"
    __stripe_id__ = "stripe_invoice_payment_id"

    id: Mapped[int] = mapped_column(primary_key=True)
    stripe_invoice_id: Mapped[str] = mapped_column(String(255), index=True)
    stripe_payment_intent_id: Mapped[str | None] = mapped_column(String(255), index=True)
    status: Mapped[str] = mapped_column(String(20))
    amount_paid: Mapped[int | None] = mapped_column()


class TaxId(StripeMirror, db.Model):
    """A tax id on an account's Stripe customer (EU VAT, GB VAT, US EIN, ...)."""

    __tablename__ = "tax_ids"
    __stripe_id__ = "stripe_tax_id"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    stripe_customer_id: Mapped[str | None] = mapped_column(String(255), index=True)
    type: Mapped[str] = mapped_column(String(32))
    value: Mapped[str] = mapped_column(String(64))
    country: Mapped[str | None] = mapped_column(String(2))
