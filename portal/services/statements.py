"""What an invoice shows: seller, buyer, lines, taxes, payments and refunds, from the mirror."""
from __future__ import annotations

from dataclasses import dataclass, field

from flask import current_app

from portal.extensions import db
from portal.models import Charge, Invoice, Refund, User

# Shown to customers: a draft is the seller's work in progress, never theirs to see.
CUSTOMER_STATUSES = ("open", "paid", "void", "uncollectible")


# Decline codes in the words a customer understands (Stripe's decline code reference).
DECLINE_REASONS = {
    "insufficient_funds": "Your card has insufficient funds.",
    "card_declined": "Your bank declined the payment.",
    "generic_decline": "Your bank declined the payment.",
    "do_not_honor": "Your bank declined the payment.",
    "lost_card": "Your bank declined the card.",
    "stolen_card": "Your bank declined the card.",
    "expired_card": "Your card has expired.",
    "incorrect_cvc": "The card's security code was not right.",
    "incorrect_number": "The card number is not right.",
    "processing_error": "The card could not be processed; trying again may work.",
    "authentication_required": "Your bank asks you to confirm this payment.",
    "card_velocity_exceeded": "Your card has reached its spending limit.",
}


def failure_reason(invoice: Invoice) -> str:
    """Return why the invoice's last payment failed, in plain words."""
    if invoice.last_payment_error_code in DECLINE_REASONS:
        return DECLINE_REASONS[invoice.last_payment_error_code]
    return invoice.last_payment_error or "The payment did not go through."


def seller_details() -> dict:
    """Return the seller block from configuration (legal name, address, tax id, logo, contact)."""
    config = current_app.config
    return {
        "legal_name": config.get("SELLER_LEGAL_NAME") or "Billing Portal Ltd",
        "address": [line.strip() for line in (config.get("SELLER_ADDRESS") or "").split("\n")
                    if line.strip()],
        "tax_id": config.get("SELLER_TAX_ID"),
        "logo": config.get("SELLER_LOGO"),
        "contact": config.get("SELLER_CONTACT") or config.get("MAIL_DEFAULT_SENDER"),
    }


def settlement_label(invoice: Invoice, refunded: int) -> str | None:
    """Return how a paid invoice was settled or unwound: from credit, refunded, or nothing."""
    if invoice.status != "paid":
        return None
    if refunded and refunded >= invoice.amount_paid:
        return "refunded"
    if refunded:
        return "partially refunded"
    if invoice.amount_paid == 0 and invoice.credit_applied > 0:
        return "paid from credit"
    return None


@dataclass
class InvoiceStatement:
    """An invoice with everything its page and PDF show."""

    invoice: Invoice
    payments: list[Charge]
    refunds: list[Refund]
    seller: dict = field(default_factory=dict)

    @property
    def refunded(self) -> int:
        """Return the amount refunded from this invoice's payments."""
        return sum(refund.amount for refund in self.refunds if refund.status != "failed"
                   and refund.status != "canceled")

    @property
    def settlement(self) -> str | None:
        """Return 'paid from credit', 'refunded' or 'partially refunded' when one applies."""
        return settlement_label(self.invoice, self.refunded)

    @property
    def address_lines(self) -> list[str]:
        """Return the buyer's address as printable lines."""
        address = self.invoice.customer_address or {}
        city = " ".join(part for part in (address.get("postal_code"), address.get("city"),
                                          address.get("state")) if part)
        return [line for line in (address.get("line1"), address.get("line2"), city,
                                  address.get("country")) if line]

    def fingerprint(self) -> dict:
        """Return everything the PDF shows, so a change to any of it makes a new version."""
        invoice = self.invoice
        return {
            "invoice": {name: getattr(invoice, name) for name in (
                "stripe_invoice_id", "number", "status", "currency", "subtotal", "total",
                "tax", "discount_total", "amount_due", "amount_paid", "amount_remaining",
                "starting_balance", "period_start", "period_end", "finalized_at", "paid_at",
                "customer_name", "customer_email", "customer_address", "customer_tax_ids",
                "lines", "taxes", "stripe_created")},
            "payments": [(c.stripe_charge_id, c.amount, c.card_brand, c.card_last4,
                          c.stripe_created) for c in self.payments],
            "refunds": [(r.stripe_refund_id, r.amount, r.status, r.stripe_created)
                        for r in self.refunds],
            "seller": self.seller,
        }


def visible_invoice(user: User, stripe_invoice_id: str) -> Invoice | None:
    """Return the invoice if this user may see it: its account's members, admins, auditors."""
    query = db.select(Invoice).where(Invoice.stripe_invoice_id == stripe_invoice_id)
    if not user.is_staff:
        if user.account_id is None:
            return None
        query = query.where(Invoice.account_id == user.account_id,
                            Invoice.status.in_(CUSTOMER_STATUSES))
    return db.session.scalar(query)


def invoice_statement(invoice: Invoice) -> InvoiceStatement:
    """Return the invoice with its successful payments (cards) and their refunds."""
    payments = list(db.session.scalars(
        db.select(Charge)
        .where(Charge.stripe_invoice_id == invoice.stripe_invoice_id,
               Charge.status == "succeeded")
        .order_by(Charge.stripe_created, Charge.id)))
    refunds = []
    if payments:
        refunds = list(db.session.scalars(
            db.select(Refund)
            .where(Refund.stripe_charge_id.in_([c.stripe_charge_id for c in payments]))
            .order_by(Refund.stripe_created, Refund.id)))
    return InvoiceStatement(invoice, payments, refunds, seller_details())
