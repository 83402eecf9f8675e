"""The only writers of the Stripe mirror: each takes a Stripe object and upserts it.

`version` is the Stripe `created` time of the event that carried the object, or for an
object fresh from the API (version=None) the time of Stripe's response. A row is never
overwritten by an older version. A write that is not a state a webhook handler settled on
marks the row as holding a fetched copy (services.fetch_marks), which tells the handlers
when an event of the same second can be applied without asking Stripe.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import inspect

from portal.extensions import db
from portal.models import (
    Account,
    Charge,
    Invoice,
    InvoicePayment,
    MrrChange,
    PaymentMethod,
    Price,
    Product,
    Refund,
    Subscription,
    SubscriptionItem,
    SubscriptionMrr,
    TaxId,
)
from portal.models.types import utcnow
from portal.services import invoice_mirror, mrr
from portal.services.fetch_marks import note_write
from portal.services.stripe_client import as_dict, response_version
from portal.services.tombstones import bury, lock_object, remove, tombstone


def _time(value: int | None) -> datetime | None:
    """Return an aware UTC datetime for a unix timestamp."""
    return datetime.fromtimestamp(value, UTC) if value else None


def _id(value: Any) -> str | None:
    """Return the id of a field that is either an id or an expanded object."""
    if isinstance(value, dict):
        return value.get("id")
    return value


def _row(model, stripe_id: str):
    """Return the mirror row for a Stripe id, locked for this transaction where supported."""
    query = db.select(model).where(model.stripe_id_column() == stripe_id).with_for_update()
    return db.session.scalar(query)


def is_stale(row, version: int | None) -> bool:
    """Return True when `version` is older than what the row already holds."""
    return row is not None and version is not None and version < row.version


# What a fill function returns when the Stripe object does not (or no longer) belong in the
# mirror without being deleted at Stripe (a card not attached to anyone yet): no trace kept.
DROP = object()
# What it returns when Stripe deleted the object: the row goes and a tombstone stays.
DELETED = object()


def upsert(model, obj, version: int | None, fill: Callable[[Any, dict], object],
           adopt: Callable[[dict], Any] | None = None):
    """Write a Stripe object into its mirror row unless the row holds a newer version.

    `fill(row, data)` copies the object's fields, or returns DROP to remove the row, or
    DELETED to remove it and leave a tombstone. An object with a tombstone stays deleted:
    Stripe never brings back a deleted customer or tax id, nor re-attaches a detached card
    (docs.stripe.com/api/payment_methods/detach). A missing row is made by `adopt(data)`
    (None: the object is not ours) or else built new; it is added to the session only once
    filled, since an autoflush of a half-filled row would break its NOT NULL columns.
    Returns the row, or None when there is none.
    """
    data = as_dict(obj)
    version = version if version is not None else response_version(obj)
    lock_object(data["id"])
    row = _row(model, data["id"])
    if is_stale(row, version):
        return row
    if row is None:
        grave = tombstone(data["id"])
        if grave is not None:
            if data.get("deleted"):
                grave.version = max(grave.version, version or 0)
            return None
        row = adopt(data) if adopt else model(**{model.__stripe_id__: data["id"]}, version=0)
        if row is None:
            return None
    if data.get("created"):
        # Stamped before filling: a fill that attaches child rows (subscription items) puts the
        # row in the session through them, and its own queries may then flush it.
        row.stripe_created = _time(data["created"])
    outcome = fill(row, data)
    if outcome is DROP or outcome is DELETED:
        if inspect(row).persistent:
            remove(row)
        if outcome is DELETED:
            bury(model, data["id"], version)
        else:
            note_write(data["id"], version or 0)
        return None
    db.session.add(row)
    if version is not None and version > row.version:
        row.version = version
    row.synced_at = utcnow()
    note_write(data["id"], row.version)
    return row


def _belongs_to_customer(row, customer_id: str | None) -> None:
    """Record the row's Stripe customer and, once known, the account it belongs to."""
    row.stripe_customer_id = customer_id
    if row.account_id is None:
        account = account_for_customer(customer_id)
        row.account_id = account.id if account else None


def account_for_customer(customer_id: str | None) -> Account | None:
    """Return the account mirrored to a Stripe customer id."""
    if not customer_id:
        return None
    return db.session.scalar(db.select(Account).where(Account.stripe_customer_id == customer_id))


def link_customer(account: Account, customer_id: str) -> None:
    """Tie an account to its Stripe customer and adopt mirror rows that arrived first."""
    account.stripe_customer_id = customer_id
    for model in (Subscription, Invoice, PaymentMethod, Charge, TaxId, SubscriptionMrr,
                  MrrChange):
        db.session.execute(
            db.update(model)
            .where(model.stripe_customer_id == customer_id, model.account_id.is_(None))
            .values(account_id=account.id)
        )


def customer(obj, version: int | None = None) -> Account | None:
    """Mirror a Stripe customer onto its account (default payment method, credit balance)."""

    def adopt(data: dict) -> Account | None:
        """Return the account a new customer's metadata names, linked to it, if it is free."""
        account_id = (data.get("metadata") or {}).get("account_id")
        if not (account_id and account_id.isdigit()):
            return None
        account = db.session.get(Account, int(account_id))
        if account is None or account.stripe_customer_id not in (None, data["id"]):
            return None
        link_customer(account, data["id"])
        return account

    def fill(account: Account, data: dict) -> object | None:
        if data.get("deleted"):
            _bury_belongings(data["id"], version)
            return DELETED
        settings = data.get("invoice_settings") or {}
        account.balance = int(data.get("balance") or 0)
        account.balance_currency = data.get("currency") or account.balance_currency
        account.legal_name = data.get("name")
        account.billing_email = data.get("email")
        account.address = data.get("address")
        account.default_payment_method_id = _id(settings.get("default_payment_method"))
        return None

    return upsert(Account, obj, version, fill, adopt)


def _bury_belongings(customer_id: str, version: int | None) -> None:
    """Remove the cards and tax ids of a deleted customer: they went with it at Stripe."""
    for model in (PaymentMethod, TaxId):
        for row in db.session.scalars(db.select(model).where(
                model.stripe_customer_id == customer_id)):
            bury(model, row.stripe_id, version)
            db.session.delete(row)


def _customer_deleted(customer_id: str | None) -> bool:
    """Tell whether the mirror saw this Stripe customer deleted."""
    return bool(customer_id) and tombstone(customer_id) is not None


def subscription(obj, version: int | None = None, *, at: int | None = None) -> Subscription:
    """Upsert a Stripe subscription (its first item is the plan price) and track its MRR.

    `at` is Stripe's time of the change when the caller knows it (the event's `created`,
    also when the object was re-fetched), else the version's time.
    """
    at = at or (version if version is not None else response_version(obj))

    def fill(row: Subscription, data: dict) -> None:
        _fill_subscription(row, data)
        mrr.track(row, data, at)

    return upsert(Subscription, obj, version, fill)


def _fill_subscription(row: Subscription, data: dict) -> None:
    """Copy a Stripe subscription's fields onto its mirror row."""
    _belongs_to_customer(row, _id(data["customer"]))
    items = (data.get("items") or {}).get("data") or []
    # The plan is the licensed item; metered overage items ride beside it.
    item = next((entry for entry in items if _usage_type(entry) == "licensed"),
                items[0] if items else {})
    price = item.get("price") or {}
    row.stripe_item_id = item.get("id")
    row.stripe_price_id = _id(price)
    row.quantity = item.get("quantity") or 0
    row.currency = data.get("currency") or price.get("currency") or "usd"
    # Since API 2025-03-31 the period lives on the item; older versions kept it on top.
    row.current_period_start = _time(item.get("current_period_start")
                                     or data.get("current_period_start"))
    row.current_period_end = _time(item.get("current_period_end")
                                   or data.get("current_period_end"))
    row.status = data["status"]
    row.trial_end = _time(data.get("trial_end"))
    row.cancel_at_period_end = bool(data.get("cancel_at_period_end"))
    row.cancel_at = _time(data.get("cancel_at"))
    row.canceled_at = _time(data.get("canceled_at"))
    row.ended_at = _time(data.get("ended_at"))
    details = data.get("cancellation_details") or {}
    row.cancellation_feedback = details.get("feedback")
    row.cancellation_comment = details.get("comment")
    row.latest_invoice_id = _id(data.get("latest_invoice"))
    row.default_payment_method_id = _id(data.get("default_payment_method"))
    if "items" in data:
        _fill_subscription_items(row, items)


def _usage_type(item: dict) -> str:
    """Return whether a subscription item's price is licensed or metered."""
    price = item.get("price") if isinstance(item.get("price"), dict) else {}
    return ((price or {}).get("recurring") or {}).get("usage_type") or "licensed"


def _fill_subscription_items(row: Subscription, items: list[dict]) -> None:
    """Mirror every item of the subscription (plan and metered prices), dropping removed ones."""
    # A new subscription row is not filled yet (upsert stamps it after this): no autoflush.
    with db.session.no_autoflush:
        existing = {} if row.id is None else {
            item.stripe_item_id: item for item in db.session.scalars(
                db.select(SubscriptionItem).where(SubscriptionItem.subscription_id == row.id))}
        for data in items:
            _fill_subscription_item(row, existing.pop(data["id"], None), data)
    for gone in existing.values():
        db.session.delete(gone)


def _fill_subscription_item(row: Subscription, item: SubscriptionItem | None,
                            data: dict) -> None:
    """Copy one Stripe subscription item onto its mirror row."""
    if item is None:
        item = db.session.scalar(db.select(SubscriptionItem).where(
            SubscriptionItem.stripe_item_id == data["id"])) or SubscriptionItem(
            stripe_item_id=data["id"])
    price = data.get("price") if isinstance(data.get("price"), dict) else {}
    item.subscription = row
    item.stripe_price_id = _id(data.get("price"))
    item.usage_type = _usage_type(data)
    item.meter_key = ((price or {}).get("metadata") or {}).get("meter_key") \
        if item.usage_type == "metered" else None
    item.quantity = data.get("quantity")
    db.session.add(item)


def _invoice_subscription_id(data: dict) -> str | None:
    """Return the subscription an invoice bills, wherever the API version puts it."""
    parent = data.get("parent") or {}
    details = parent.get("subscription_details") or {}
    return _id(details.get("subscription")) or _id(data.get("subscription"))


def invoice_lines(data: dict, lines: list[dict] | None = None) -> list[dict]:
    """Return an invoice's lines as the portal shows them, metered ones recognised."""
    prices = invoice_mirror.line_price_ids(data, lines)
    metered = set(db.session.scalars(db.select(Price.stripe_price_id).where(
        Price.stripe_price_id.in_(prices), Price.usage_type == "metered"))) if prices else set()
    return invoice_mirror.invoice_lines(data, metered, lines)


def invoice(obj, version: int | None = None, *, lines: list[dict] | None = None,
            tax_rates: dict[str, dict] | None = None,
            payment_error: dict | None = None) -> Invoice:
    """Upsert a Stripe invoice with its lines, taxes by rate and buyer details.

    `lines` is the full list when the payload's first page had more; `tax_rates` the rate
    objects its taxes name; `payment_error` the last failed attempt's error, when known.
    """

    def fill(row: Invoice, data: dict) -> None:
        _fill_invoice(row, data, lines, tax_rates, payment_error)

    return upsert(Invoice, obj, version, fill)


def _fill_invoice(row: Invoice, data: dict, lines: list[dict] | None,
                  tax_rates: dict[str, dict] | None, payment_error: dict | None) -> None:
    """Copy a Stripe invoice's fields, lines, taxes and buyer onto its mirror row."""
    _belongs_to_customer(row, _id(data["customer"]))
    row.stripe_subscription_id = _invoice_subscription_id(data)
    row.number = data.get("number")
    row.status = data["status"]
    row.billing_reason = data.get("billing_reason")
    row.currency = data["currency"]
    row.subtotal = data.get("subtotal") or 0
    row.total = data.get("total") or 0
    taxes = data.get("total_taxes") or []
    row.tax = sum(tax.get("amount", 0) for tax in taxes) if taxes else (data.get("tax") or 0)
    row.amount_due = data.get("amount_due") or 0
    row.amount_paid = data.get("amount_paid") or 0
    row.amount_remaining = data.get("amount_remaining") or 0
    row.attempt_count = data.get("attempt_count") or 0
    row.period_start = _time(data.get("period_start"))
    row.period_end = _time(data.get("period_end"))
    row.next_payment_attempt = _time(data.get("next_payment_attempt"))
    row.hosted_invoice_url = data.get("hosted_invoice_url")
    row.invoice_pdf = data.get("invoice_pdf")
    first_page = data.get("lines") or {}
    if lines is not None or not (first_page.get("has_more") and row.lines):
        # A payload holding only the first page of lines never shortens the full list.
        row.lines = invoice_lines(data, lines)
    discounts = data.get("total_discount_amounts") or []
    row.discount_total = sum(discount.get("amount", 0) for discount in discounts)
    if tax_rates is not None or not row.taxes:
        row.taxes = invoice_mirror.tax_by_rate(data, tax_rates or {})
    row.starting_balance = data.get("starting_balance") or 0
    row.ending_balance = data.get("ending_balance")
    for name, value in {**invoice_mirror.buyer_details(data),
                        **invoice_mirror.payment_times(data)}.items():
        setattr(row, name, value)
    if payment_error is not None:
        row.last_payment_error_code = payment_error.get("decline_code") or payment_error.get(
            "code")
        row.last_payment_error = (payment_error.get("message") or "")[:500] or None
    if row.status in ("paid", "void", "uncollectible"):
        row.last_payment_error_code = row.last_payment_error = None


def _lock_customer_of(obj) -> None:
    """Take the lock of the customer an object names before the object's own lock.

    The customer's deletion (holding that lock) removes its cards and tax ids, and a card or
    tax id is not written for a customer the mirror saw deleted: under READ COMMITTED each
    could miss the other's uncommitted rows, so the two are serialised, always customer first.
    """
    customer_id = _id(as_dict(obj).get("customer"))
    if customer_id:
        lock_object(customer_id)


def payment_method(obj, version: int | None = None) -> PaymentMethod | None:
    """Upsert an attached card, or drop it once detached."""
    _lock_customer_of(obj)
    return upsert(PaymentMethod, obj, version, _fill_payment_method)


def _fill_payment_method(row: PaymentMethod, data: dict) -> object | None:
    """Copy an attached card's fields onto its mirror row; a detached one is DELETED."""
    if data.get("deleted"):
        return DELETED
    customer_id = _id(data.get("customer"))
    card = data.get("card") or {}
    if not customer_id or not card:
        # A card the mirror held that has no customer now was detached; one never held was
        # simply not attached yet.
        return DELETED if inspect(row).persistent else DROP
    if _customer_deleted(customer_id):
        return DELETED
    row.stripe_customer_id = customer_id
    account = account_for_customer(customer_id)
    row.account_id = account.id if account else None
    row.brand = card.get("display_brand") or card.get("brand") or "card"
    row.last4 = card.get("last4") or "????"
    row.exp_month = card.get("exp_month") or 1
    row.exp_year = card.get("exp_year") or 1970
    row.fingerprint = card.get("fingerprint")
    return None


def charge(obj, version: int | None = None) -> Charge:
    """Upsert a charge and the amounts refunded from it."""
    return upsert(Charge, obj, version, _fill_charge)


def _fill_charge(row: Charge, data: dict) -> None:
    """Copy a charge's status and amounts onto its mirror row."""
    _belongs_to_customer(row, _id(data.get("customer")))
    row.stripe_invoice_id = _id(data.get("invoice")) or row.stripe_invoice_id
    row.stripe_payment_intent_id = _id(data.get("payment_intent"))
    if row.stripe_invoice_id is None and row.stripe_payment_intent_id:
        # Serialised with the invoice payment's writer (see _fill_invoice_payment), so under
        # READ COMMITTED this look-up runs after that writer committed, or before it started.
        lock_object(row.stripe_payment_intent_id)
        row.stripe_invoice_id = db.session.scalar(
            db.select(InvoicePayment.stripe_invoice_id).where(
                InvoicePayment.stripe_payment_intent_id == row.stripe_payment_intent_id))
    card = (data.get("payment_method_details") or {}).get("card") or {}
    row.card_brand = card.get("display_brand") or card.get("brand")
    row.card_last4 = card.get("last4")
    row.failure_code = (data.get("outcome") or {}).get("reason") or data.get("failure_code")
    row.failure_message = (data.get("failure_message") or "")[:500] or None
    row.status = data["status"]
    row.currency = data["currency"]
    row.amount = data["amount"]
    row.amount_captured = data.get("amount_captured") or 0
    row.amount_refunded = data.get("amount_refunded") or 0


def refund(obj, version: int | None = None) -> Refund:
    """Upsert a refund."""
    return upsert(Refund, obj, version, _fill_refund)


def _fill_refund(row: Refund, data: dict) -> None:
    """Copy a refund's amount and status onto its mirror row."""
    row.stripe_charge_id = _id(data.get("charge"))
    charge_row = (
        db.session.scalar(db.select(Charge).where(Charge.stripe_charge_id == row.stripe_charge_id))
        if row.stripe_charge_id else None
    )
    row.account_id = charge_row.account_id if charge_row else row.account_id
    row.amount = data["amount"]
    row.currency = data["currency"]
    row.status = data["status"]
    row.reason = data.get("reason")


def invoice_payment(obj, version: int | None = None) -> InvoicePayment:
    """Upsert Stripe's link between an invoice and a payment intent; tie its charges to it."""
    return upsert(InvoicePayment, obj, version, _fill_invoice_payment)


def _fill_invoice_payment(row: InvoicePayment, data: dict) -> None:
    """Copy an invoice payment's link and status; give its charges the invoice id."""
    row.stripe_invoice_id = _id(data["invoice"])
    row.stripe_payment_intent_id = _id((data.get("payment") or {}).get("payment_intent"))
    row.status = data.get("status") or "open"
    row.amount_paid = data.get("amount_paid")
    if row.stripe_payment_intent_id:
        # A charge of this payment intent inserted by a transaction still running is invisible
        # to this UPDATE, and that charge's own look-up cannot see this uncommitted row: both
        # writers take the payment intent's lock, so whichever comes second sees the other.
        lock_object(row.stripe_payment_intent_id)
        db.session.execute(
            db.update(Charge)
            .where(Charge.stripe_payment_intent_id == row.stripe_payment_intent_id,
                   Charge.stripe_invoice_id.is_(None))
            .values(stripe_invoice_id=row.stripe_invoice_id))


def tax_id(obj, version: int | None = None) -> TaxId | None:
    """Upsert a customer's tax id, or drop it once deleted."""
    _lock_customer_of(obj)
    return upsert(TaxId, obj, version, _fill_tax_id)


def _fill_tax_id(row: TaxId, data: dict) -> object:
    """Copy a tax id's type and value, or say it no longer belongs in the mirror."""
    if data.get("deleted") or _customer_deleted(_id(data.get("customer"))):
        return DELETED
    _belongs_to_customer(row, _id(data.get("customer")))
    row.type = data["type"]
    row.value = data["value"]
    row.country = data.get("country")
    return None


def checkout_session(obj) -> Account | None:
    """Link the account named by a completed Checkout Session to the session's customer."""
    data = as_dict(obj)
    reference = data.get("client_reference_id") or ""
    customer_id = _id(data.get("customer"))
    if not (reference.isdigit() and customer_id):
        return None
    account = db.session.get(Account, int(reference))
    if account is None:
        return None
    if account.stripe_customer_id is None:
        link_customer(account, customer_id)
    return account


def product(obj) -> Product | None:
    """Mirror a Stripe product onto the catalog plan named by its metadata plan_key."""
    data = as_dict(obj)
    row = db.session.scalar(db.select(Product).where(Product.stripe_product_id == data["id"]))
    if row is None:
        plan_key = (data.get("metadata") or {}).get("plan_key")
        row = db.session.scalar(db.select(Product).where(Product.key == plan_key))
        if row is None:
            return None
        # The plan's product was replaced at Stripe (or the sandbox was reset): follow it.
        row.stripe_product_id = data["id"]
    row.active = bool(data.get("active", True))
    return row


def price(obj) -> Price | None:
    """Mirror a Stripe price of a catalog plan (licensed, or metered overage)."""
    data = as_dict(obj)
    row = db.session.scalar(db.select(Price).where(Price.stripe_price_id == data["id"]))
    holder = None
    if data.get("lookup_key"):
        holder = db.session.scalar(db.select(Price).where(
            Price.lookup_key == data["lookup_key"]))
    if row is None and holder is not None and holder.stripe_price_id is None:
        row = holder
    elif holder is not None and holder is not row:
        # Stripe keeps lookup keys unique: the key moved to this price, so the old one lost it.
        holder.lookup_key = None
        holder.active = False
        db.session.flush()
    if row is None:
        plan = db.session.scalar(
            db.select(Product).where(Product.stripe_product_id == _id(data["product"])))
        if plan is None:
            return None
        row = Price(product=plan)
    recurring = data.get("recurring") or {}
    metadata = data.get("metadata") or {}
    row.stripe_price_id = data["id"]
    row.lookup_key = data.get("lookup_key")
    row.active = bool(data.get("active"))
    row.currency = data["currency"]
    row.interval = recurring.get("interval") or "month"
    row.interval_count = recurring.get("interval_count") or 1
    row.usage_type = recurring.get("usage_type") or "licensed"
    row.unit_amount = data.get("unit_amount") or 0
    if row.usage_type == "metered":
        row.meter_key = metadata.get("meter_key")
        included = metadata.get("included_units", "0")
        row.included_units = int(included) if included.isdigit() else 0
        row.overage_unit_amount_decimal = metadata.get("overage_unit_amount_decimal")
    db.session.add(row)
    return row
