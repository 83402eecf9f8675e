"""Invoices from the mirror, and paying an open one (3-D Secure through Stripe.js)."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import func, tuple_

from portal.extensions import db
from portal.models import Account, Charge, Invoice
from portal.services import sync
from portal.services.refusals import BillingRefused
from portal.services.statements import CUSTOMER_STATUSES, settlement_label
from portal.services.stripe_client import CardError, as_dict, stripe_client


class InvoicePaymentRefused(BillingRefused):
    """Raised when an invoice cannot be paid from the portal."""


@dataclass
class InvoicePayment:
    """How paying an invoice went: paid, or a client secret for the browser to finish."""

    invoice: Invoice
    paid: bool
    client_secret: str | None = None
    message: str | None = None


# What lists of invoices never show: their lines, taxes and frozen buyer details, JSON that
# would be decoded for every row. The invoice page and the PDF load the whole row.
LIST_DEFERRED = (Invoice.lines, Invoice.taxes, Invoice.customer_address,
                 Invoice.customer_tax_ids)


# Statements every customer page runs are built once (building costs more than running).
LISTED_INVOICES = db.select(Invoice).options(*(db.defer(column) for column in LIST_DEFERRED))
RECENT_INVOICES = (
    LISTED_INVOICES
    .where(Invoice.account_id == db.bindparam("account_id"), Invoice.status != "draft")
    .order_by(Invoice.stripe_created.desc(), Invoice.id.desc())
    .limit(db.bindparam("limit", type_=db.Integer)))
_UNPAID = LISTED_INVOICES.where(Invoice.account_id == db.bindparam("account_id"),
                                Invoice.status == "open", Invoice.amount_remaining > 0)
OPEN_INVOICE = _UNPAID.order_by(Invoice.stripe_created).limit(1)
UNPAID_INVOICES = _UNPAID.order_by(Invoice.stripe_created, Invoice.id)
FAILING_INVOICE = _UNPAID.where(Invoice.attempt_count > 0).order_by(
    Invoice.stripe_created).limit(1)


def _listed_invoices():
    """Return a select of invoices for lists, without the columns lists never show."""
    return LISTED_INVOICES


def recent_invoices(account: Account, limit: int = 12) -> list[Invoice]:
    """Return the account's invoices, newest first (drafts left out)."""
    return list(db.session.scalars(RECENT_INVOICES, {"account_id": account.id, "limit": limit}))


INVOICES_PER_PAGE = 25


class BadInvoiceFilter(ValueError):
    """Raised for a status, year or page cursor the invoice list does not understand."""


@dataclass
class InvoiceHistoryPage:
    """One page of an account's invoices, with what each was refunded and the next cursor."""

    invoices: list[Invoice]
    refunded: dict[str, int] = field(default_factory=dict)
    next_cursor: str | None = None

    def settlement(self, invoice: Invoice) -> str | None:
        """Return 'paid from credit', 'refunded' or 'partially refunded' for an invoice."""
        return settlement_label(invoice, self.refunded.get(invoice.stripe_invoice_id, 0))


def _cursor_of(invoice: Invoice) -> str:
    """Return the keyset cursor just after an invoice (its creation time and row id)."""
    return f"{int(invoice.stripe_created.timestamp())}.{invoice.id}"


def _parse_cursor(cursor: str) -> tuple[datetime, int]:
    """Return (created, id) from a cursor, or refuse a malformed one."""
    created, _, row_id = cursor.partition(".")
    if not (created.isdigit() and row_id.isdigit()) or len(created) > 12:
        raise BadInvoiceFilter("That page link is not valid.")
    return datetime.fromtimestamp(int(created), UTC), int(row_id)


FIRST_HISTORY_PAGE = (
    LISTED_INVOICES
    .where(Invoice.account_id == db.bindparam("account_id"),
           Invoice.status.in_(CUSTOMER_STATUSES))
    .order_by(Invoice.stripe_created.desc(), Invoice.id.desc())
    .limit(db.bindparam("limit", type_=db.Integer)))
REFUNDED_BY_INVOICE = (
    db.select(Charge.stripe_invoice_id, func.sum(Charge.amount_refunded))
    .where(Charge.stripe_invoice_id.in_(db.bindparam("paid", expanding=True)))
    .group_by(Charge.stripe_invoice_id))
INVOICE_YEARS = (
    db.select(func.min(Invoice.stripe_created), func.max(Invoice.stripe_created))
    .where(Invoice.account_id == db.bindparam("account_id")))


def invoice_history(account_id: int, status: str | None = None, year: int | None = None,
                    cursor: str | None = None,
                    per_page: int = INVOICES_PER_PAGE) -> InvoiceHistoryPage:
    """Return a page of the account's invoices, newest first, by keyset (two queries)."""
    query = _listed_invoices().where(Invoice.account_id == account_id)
    parameters: dict = {}
    if not (status or year is not None or cursor):
        # The page customers open: a statement built once.
        query = FIRST_HISTORY_PAGE
        parameters = {"account_id": account_id, "limit": per_page + 1}
    elif status:
        if status not in CUSTOMER_STATUSES:
            raise BadInvoiceFilter("Unknown invoice status.")
        query = query.where(Invoice.status == status)
    else:
        query = query.where(Invoice.status.in_(CUSTOMER_STATUSES))
    if year is not None:
        if not 1970 <= year <= 9998:
            raise BadInvoiceFilter("Unknown year.")
        query = query.where(Invoice.stripe_created >= datetime(year, 1, 1, tzinfo=UTC),
                            Invoice.stripe_created < datetime(year + 1, 1, 1, tzinfo=UTC))
    if cursor:
        created, row_id = _parse_cursor(cursor)
        # Rows strictly after the cursor in (created, id) order: an index range, no OFFSET.
        query = query.where(tuple_(Invoice.stripe_created, Invoice.id) < (created, row_id))
    if status or year is not None or cursor:
        query = query.order_by(Invoice.stripe_created.desc(), Invoice.id.desc()).limit(
            per_page + 1)
    rows = list(db.session.scalars(query, parameters))
    page = InvoiceHistoryPage(rows[:per_page])
    if len(rows) > per_page:
        page.next_cursor = _cursor_of(rows[per_page - 1])
    paid = [row.stripe_invoice_id for row in page.invoices if row.status == "paid"]
    if paid:
        page.refunded = dict(db.session.execute(REFUNDED_BY_INVOICE, {"paid": paid}).all())
    return page


def invoice_years(account_id: int) -> list[int]:
    """Return the years the account has invoices in, newest first."""
    created = db.session.execute(INVOICE_YEARS, {"account_id": account_id}).one()
    if created[0] is None:
        return []
    return list(range(created[1].year, created[0].year - 1, -1))


def unpaid_invoices(account: Account) -> tuple[Invoice | None, Invoice | None]:
    """Return the oldest unpaid open invoice and the oldest whose automatic payment failed
    (one query: an account has few open invoices)."""
    rows = list(db.session.scalars(UNPAID_INVOICES, {"account_id": account.id}))
    return (rows[0] if rows else None,
            next((row for row in rows if row.attempt_count > 0), None))


def failing_invoice(account: Account) -> Invoice | None:
    """Return the account's open invoice whose automatic payment failed, if any."""
    return db.session.scalar(FAILING_INVOICE, {"account_id": account.id})


def open_invoice(account: Account) -> Invoice | None:
    """Return the account's oldest unpaid open invoice, if any."""
    return db.session.scalar(OPEN_INVOICE, {"account_id": account.id})


def account_invoice(account: Account, stripe_invoice_id: str) -> Invoice:
    """Return an invoice of this account or refuse."""
    invoice = db.session.scalar(db.select(Invoice).where(
        Invoice.stripe_invoice_id == stripe_invoice_id, Invoice.account_id == account.id))
    if invoice is None:
        raise InvoicePaymentRefused("That invoice is not on this account.")
    return invoice


def latest_payment_intent(client, stripe_invoice_id: str) -> dict | None:
    """Return the newest payment intent Stripe recorded for an invoice."""
    payments = client.v1.invoice_payments.list(params={
        "invoice": stripe_invoice_id, "limit": 1, "expand": ["data.payment.payment_intent"]})
    for payment in payments.data:
        intent = (as_dict(payment).get("payment") or {}).get("payment_intent")
        if isinstance(intent, dict):
            return intent
        if isinstance(intent, str):
            return as_dict(client.v1.payment_intents.retrieve(intent))
    return None


def pay_invoice(account: Account, stripe_invoice_id: str) -> InvoicePayment:
    """Try the default card on an open invoice; hand 3-D Secure to the browser when asked."""
    invoice = account_invoice(account, stripe_invoice_id)
    if invoice.status == "paid":
        # A second press of Pay now after the first went through: nothing more to do.
        return InvoicePayment(invoice=invoice, paid=True)
    if invoice.status != "open":
        raise InvoicePaymentRefused("This invoice is not waiting for payment.")
    client = stripe_client()
    message = None
    try:
        paid = client.v1.invoices.pay(
            stripe_invoice_id, params={"off_session": False},
            options={"idempotency_key": f"pay-{stripe_invoice_id}-{invoice.attempt_count}"})
        invoice = sync.invoice(paid)
        db.session.commit()
        if paid.status == "paid":
            return InvoicePayment(invoice=invoice, paid=True)
    except CardError as exc:
        message = exc.user_message or "Your card was declined."
    intent = latest_payment_intent(client, stripe_invoice_id)
    if intent and intent.get("status") == "requires_action":
        return InvoicePayment(invoice=invoice, paid=False, client_secret=intent["client_secret"])
    refreshed = sync.invoice(client.v1.invoices.retrieve(stripe_invoice_id))
    db.session.commit()
    return InvoicePayment(invoice=refreshed, paid=refreshed.status == "paid",
                          message=message or "The payment did not go through.")


def invoice_settled(account: Account, stripe_invoice_id: str) -> str:
    """Return where an invoice paid in the browser stands in the mirror: paid or waiting."""
    invoice = account_invoice(account, stripe_invoice_id)
    if invoice.status == "paid":
        return "paid"
    return "failed" if invoice.status in ("void", "uncollectible") else "waiting"


@dataclass
class NextInvoiceEstimate:
    """How the account's credit balance applies to the next renewal (Stripe applies it first)."""

    amount: int
    currency: str
    credit_applied: int
    charged: int
    credit_left: int


def next_invoice_estimate(account: Account, summary) -> NextInvoiceEstimate | None:
    """Return the next renewal with the mirrored credit balance applied, as Stripe will."""
    if summary is None or summary.next_invoice_amount is None:
        return None
    amount = summary.next_invoice_amount
    applied = min(account.credit_balance, max(amount, 0))
    return NextInvoiceEstimate(amount=amount, currency=summary.subscription.currency,
                               credit_applied=applied, charged=amount - applied,
                               credit_left=account.credit_balance - applied)
