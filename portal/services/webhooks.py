"""Stripe webhook intake: store each event once, then process it through one handler table."""
from __future__ import annotations

import json
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import IntegrityError, OperationalError

from portal.extensions import db
from portal.models import (
    Account,
    Charge,
    Invoice,
    InvoicePayment,
    PaymentMethod,
    Refund,
    Subscription,
    TaxId,
    WebhookEvent,
)
from portal.services import credit_packs, credits, fetch_marks, invoice_mirror, mrr, notices, sync
from portal.services.event_order import Sighting, newest_known, sighting_of
from portal.services.payment_methods import adopt_checkout_card
from portal.services.refunds import follow_stripe_refund
from portal.services.stripe_client import (
    as_dict,
    stripe_client,
    verify_event,
)
from portal.services.tombstones import tombstone

Handler = Callable[[dict, int], None]
CONFLICT_RETRIES = 3
# The event being processed, so the mirror can weigh its object against the other events
# stored about the same object (its type and previous_attributes tell their order).
_processing: ContextVar[dict | None] = ContextVar("stripe_event", default=None)
# When the portal received that event (a fetch asked for after it covers it).
_received_at: ContextVar[datetime | None] = ContextVar("stripe_event_received", default=None)


class DuplicateEvent(Exception):
    """Raised when an event id was received before."""


def event_customer(obj: dict) -> str | None:
    """Return the id of the Stripe customer an event's object is, or belongs to."""
    if obj.get("object") == "customer":
        return obj.get("id") if isinstance(obj.get("id"), str) else None
    customer = obj.get("customer")
    if isinstance(customer, dict):
        customer = customer.get("id")
    return customer[:255] if isinstance(customer, str) else None


@dataclass(frozen=True)
class StoredEvent:
    """What the intake needs of an event it just stored (read before the commit, so the
    answer costs no second look-up of the row)."""

    id: int
    stripe_event_id: str
    type: str


def record_event(payload: bytes, signature: str | None) -> StoredEvent:
    """Verify the signature and store the raw event; raise DuplicateEvent if seen before.

    The payload is only checked and parsed as JSON, never built into a Stripe object, and a
    re-delivery is turned away by one indexed look-up before anything else is written.
    """
    event = verify_event(payload, signature)
    data = event.get("data") if isinstance(event, dict) else None
    if not (
        isinstance(event.get("id"), str) and isinstance(event.get("type"), str)
        and isinstance(event.get("created"), int) and isinstance(data, dict)
        and isinstance(data.get("object"), dict)
    ):
        raise ValueError("payload is not a Stripe event")
    if db.session.scalar(db.select(WebhookEvent.id).where(
            WebhookEvent.stripe_event_id == event["id"])) is not None:
        db.session.rollback()
        raise DuplicateEvent(event["id"])
    object_id = data["object"].get("id")
    # A Core INSERT ... RETURNING: the ORM's unit of work would cost as much again.
    insert = db.insert(WebhookEvent).values(
        stripe_event_id=event["id"],
        type=event["type"],
        api_version=event.get("api_version"),
        stripe_created=event["created"],
        payload=payload.decode("utf-8"),
        stripe_customer_id=event_customer(data["object"]),
        object_id=object_id if isinstance(object_id, str) else None,
    ).returning(WebhookEvent.id)
    try:
        stored = StoredEvent(db.session.execute(insert).scalar_one(), event["id"], event["type"])
        db.session.commit()
    except IntegrityError as exc:
        # The unique event id decided: another delivery (or thread) stored it first.
        db.session.rollback()
        raise DuplicateEvent(event["id"]) from exc
    return stored


def _stored_version(model, stripe_id: str) -> int | None:
    """Return the version the mirror holds for an object: its row's, or its tombstone's."""
    version = db.session.scalar(
        db.select(model.version).where(model.stripe_id_column() == stripe_id))
    if version is None:
        grave = tombstone(stripe_id)
        version = grave.version if grave is not None else None
    return version


def _this_sighting(data: dict, created: int) -> Sighting:
    """Return the state `data` shows, with the type and changes of the event carrying it."""
    event = _processing.get()
    if event is not None and event["data"]["object"].get("id") == data.get("id"):
        return sighting_of(event)
    return Sighting(data, created)


def settle(model, data: dict, created: int, fetch: Callable[[str], object]
           ) -> tuple[dict, int] | None:
    """Return the state of an object to mirror and its version, or None to leave the row be.

    The newest state known is the one carried by the newest event stored about the object
    (this one included). It is applied as it is, with no call to Stripe, when it is newer than
    the row, or of the row's second while the row was written from events alone (services.
    fetch_marks). Stripe is asked for its current copy, which is at least as new as every
    event already received, only when a fetched copy of the same second may be newer, or when
    events of that second disagree and their order cannot be told; an event received before
    the last fetch is covered by it, so a burst about one object costs at most one fetch. An
    object the mirror saw deleted stays deleted: Stripe never undoes those deletions, so no
    later event can carry it alive.
    """
    stored = _stored_version(model, data["id"])
    newest = newest_known(data["id"], _this_sighting(data, created))
    if tombstone(data["id"]) is not None:
        return None
    if stored is not None and newest.created < stored:
        return None
    mark = fetch_marks.mark_of(data["id"])
    if fetch_marks.covers(mark, _received_at.get()):
        return None
    if newest.obj is not None and (stored is None or newest.created > stored
                                   or fetch_marks.from_events(mark, stored)):
        return newest.obj, newest.created
    # Stripe's copy is at least as new as every event received, so it takes the newest of
    # their times. Not the response's date: on a test clock, event times follow the clock,
    # not the wall clock, and a wall-clock stamp would make the clock's later events look old.
    version = max(newest.created, stored or 0)
    return as_dict(fetch_marks.fetch_marked(data["id"], version, fetch)), version


def _mirror(apply: Callable, model, data: dict, created: int,
            resource: str | Callable[[str], object]):
    """Apply the newest known state of an event's object (see `settle`); return its row.

    `resource` names the StripeClient service (e.g. "customers") or fetches by id itself;
    a client is only needed when Stripe must be asked.
    """

    def fetch(stripe_id: str):
        if callable(resource):
            return resource(stripe_id)
        return getattr(stripe_client().v1, resource).retrieve(stripe_id)

    settled = settle(model, data, created, fetch)
    if settled is None:
        return db.session.scalar(
            db.select(model).where(model.stripe_id_column() == data["id"]))
    with fetch_marks.settled_write():
        return apply(*settled)


def _subscription_with_coupons(subscription_id: str):
    """Fetch a subscription with its discounts' coupons, which its MRR is net of."""
    return stripe_client().v1.subscriptions.retrieve(
        subscription_id, params={"expand": [mrr.DISCOUNT_EXPAND]})


def on_subscription(data: dict, created: int) -> None:
    """Mirror a subscription from customer.subscription.* events.

    MRR is net of discounts, so a state naming discounts whose coupon terms the mirror does
    not know yet is replaced by Stripe's copy with its coupons (events carry only their ids).
    """

    def apply(state: dict, version: int) -> Subscription:
        if mrr.needs_discount_terms(state):
            state = as_dict(fetch_marks.fetch_marked(state["id"], version,
                                                     _subscription_with_coupons))
        # A re-fetched copy is dated by Stripe's response; the change happened at the event.
        return sync.subscription(state, version, at=created)

    _mirror(apply, Subscription, data, created, _subscription_with_coupons)


def on_invoice(data: dict, created: int) -> Invoice | None:
    """Mirror an invoice from invoice.* events, with all its lines, tax rates and payments."""
    row = db.session.scalar(db.select(Invoice).where(Invoice.stripe_invoice_id == data["id"]))
    settled = settle(Invoice, data, created, lambda invoice_id: stripe_client().v1.invoices
                     .retrieve(invoice_id))
    if settled is None:
        return row
    data, version = settled
    extras = invoice_extras(stripe_client, data, row)
    with fetch_marks.settled_write():
        return sync.invoice(data, version, **extras)


def _payments_known(row: Invoice | None, data: dict) -> bool:
    """Tell whether the mirror already fetched the invoice's payments in this state."""
    return row is not None and (row.status, row.attempt_count, row.amount_paid) == (
        data.get("status"), data.get("attempt_count") or 0, data.get("amount_paid") or 0)


# A paid invoice's payment was made at most this long after its finalization for one list of
# the latest payments to look for it (beyond, its own list is asked for).
PAYMENT_SWEEP_WINDOW = 3600
PAYMENT_SWEEP_PAGES = 3


def _payments_cover(data: dict) -> bool:
    """Tell whether the mirrored payments of a paid invoice add up to what it was paid."""
    paid = db.session.scalar(db.select(db.func.sum(InvoicePayment.amount_paid)).where(
        InvoicePayment.stripe_invoice_id == data["id"], InvoicePayment.status == "paid"))
    return paid is not None and paid >= (data.get("amount_paid") or 0)


def _paid_payments_mirrored(client_of: Callable, data: dict) -> bool:
    """Mirror a paid invoice's payments from one list of the account's latest; tell if done.

    Payments can be listed without naming an invoice (docs.stripe.com/api/invoice-payment/
    list), newest first. When renewals are paid in a burst, the first paid invoice handled
    lists every payment made since its finalization and mirrors them all, so the other
    invoices of the burst find theirs already there: one call instead of one per invoice.
    False when the invoice's payments are not among them (the caller lists its own).
    """
    if _payments_cover(data):
        return True
    transitions = data.get("status_transitions") or {}
    since = transitions.get("finalized_at") or data.get("created")
    paid_at = transitions.get("paid_at")
    if not since or not paid_at or paid_at - since > PAYMENT_SWEEP_WINDOW:
        return False
    page = client_of().v1.invoice_payments.list(params={
        "created": {"gte": since - 60}, "limit": 100})
    listed: list[dict] = []
    for _ in range(PAYMENT_SWEEP_PAGES):
        listed.extend(as_dict(payment) for payment in page.data)
        if not page.has_more:
            break
        page = page.next_page()
    known = {(payment_id, status, amount) for payment_id, status, amount in db.session.execute(
        db.select(InvoicePayment.stripe_invoice_payment_id, InvoicePayment.status,
                  InvoicePayment.amount_paid).where(
            InvoicePayment.stripe_invoice_payment_id.in_([p["id"] for p in listed])))}
    # One order for every writer, so two sweeps never wait on each other's locks in a cycle.
    for payment in sorted(listed, key=lambda p: str((p.get("payment") or {}).get(
            "payment_intent"))):
        if (payment["id"], payment.get("status"), payment.get("amount_paid")) not in known:
            sync.invoice_payment(payment)
    return _payments_cover(data)


def invoice_extras(client_of: Callable, data: dict, row: Invoice | None = None) -> dict:
    """Fetch what an invoice payload leaves out: lines past the first page, the tax rates
    its taxes name, and its payments (linking charges, and the last failure's reason).

    What the mirror row already holds for the same state is not fetched again.
    """
    extras: dict = {}
    lines = data.get("lines") or {}
    if lines.get("has_more") and not (row is not None and row.lines
                                      and row.total == data.get("total")):
        extras["lines"] = [as_dict(line) for line in client_of().v1.invoices.line_items.list(
            data["id"], params={"limit": 100}).auto_paging_iter()]
    rate_ids = invoice_mirror.tax_rate_ids(data)
    if rate_ids and not (row is not None and row.taxes):
        extras["tax_rates"] = {rate_id: as_dict(client_of().v1.tax_rates.retrieve(rate_id))
                               for rate_id in sorted(rate_ids)}
    if data.get("status") in ("open", "paid") and (data.get("attempt_count") or
                                                   data.get("amount_paid")) \
            and not _payments_known(row, data) and not (
                data.get("status") == "paid" and _paid_payments_mirrored(client_of, data)):
        payments = client_of().v1.invoice_payments.list(params={
            "invoice": data["id"], "limit": 100, "expand": ["data.payment.payment_intent"]})
        newest_error = None
        for payment in payments.data:
            payment = as_dict(payment)
            intent = (payment.get("payment") or {}).get("payment_intent")
            if isinstance(intent, dict):
                payment["payment"]["payment_intent"] = intent["id"]
                if newest_error is None and intent.get("last_payment_error"):
                    newest_error = intent["last_payment_error"]
            sync.invoice_payment(payment)
        if newest_error is not None and data.get("status") == "open":
            extras["payment_error"] = newest_error
    return extras


def on_invoice_paid(data: dict, created: int) -> None:
    """Mirror a paid invoice and queue its receipt."""
    notices.send_receipt(on_invoice(data, created))


def on_invoice_payment_failed(data: dict, created: int) -> None:
    """Mirror an invoice whose payment failed and queue the notice with the next retry."""
    notices.send_payment_failed(on_invoice(data, created))


def on_invoice_upcoming(data: dict, created: int) -> None:
    """Queue the renewal reminder of a yearly subscription (the preview has no id)."""
    details = (data.get("parent") or {}).get("subscription_details") or {}
    subscription_id = details.get("subscription") or data.get("subscription")
    if isinstance(subscription_id, dict):
        subscription_id = subscription_id.get("id")
    subscription = db.session.scalar(db.select(Subscription).where(
        Subscription.stripe_subscription_id == subscription_id)) if subscription_id else None
    notices.send_renewal_reminder(data, subscription)


def on_trial_will_end(data: dict, created: int) -> None:
    """Mirror the subscription and queue the trial reminder."""
    on_subscription(data, created)
    notices.send_trial_reminder(_subscription_row(data["id"]))


def on_subscription_deleted(data: dict, created: int) -> None:
    """Mirror the ended subscription and queue the cancellation notice."""
    on_subscription(data, created)
    notices.send_cancellation(_subscription_row(data["id"]))


def _subscription_row(stripe_subscription_id: str) -> Subscription:
    return db.session.scalar(db.select(Subscription).where(
        Subscription.stripe_subscription_id == stripe_subscription_id))


def on_tax_id(data: dict, created: int) -> None:
    """Mirror a customer's new tax id."""
    _mirror(sync.tax_id, TaxId, data, created,
            lambda tax_id: stripe_client().v1.customers.tax_ids.retrieve(
                data["customer"], tax_id))


def on_tax_id_deleted(data: dict, created: int) -> None:
    """Drop a customer's deleted tax id from the mirror, leaving its tombstone."""
    sync.tax_id({**data, "deleted": True}, created)


def on_customer_deleted(data: dict, created: int) -> None:
    """Unlink the account of a deleted customer, leaving the customer's tombstone."""
    sync.customer({**data, "deleted": True}, created)


def on_payment_method(data: dict, created: int) -> None:
    """Mirror an attached card, or drop a detached one."""
    _mirror(sync.payment_method, PaymentMethod, data, created, "payment_methods")


def on_customer(data: dict, created: int) -> None:
    """Mirror the customer's default payment method onto its account."""
    _mirror(sync.customer, Account, data, created, "customers")


def on_payment_intent(data: dict, created: int) -> None:
    """Mirror the charge a payment intent just made, unless its charge event already did."""
    charge_id = data.get("latest_charge")
    if isinstance(charge_id, dict):
        charge_id = charge_id.get("id")
    if not charge_id:
        return
    known = db.session.scalar(db.select(Charge.id).where(Charge.stripe_charge_id == charge_id))
    # Stripe sends a charge.* event for every charge: once it is in, that event mirrors it.
    coming = db.session.scalar(db.select(WebhookEvent.id).where(
        WebhookEvent.object_id == charge_id).limit(1))
    if known is None and coming is None:
        sync.charge(stripe_client().v1.charges.retrieve(charge_id))


def on_charge(data: dict, created: int) -> None:
    """Mirror a charge, the invoice it paid and the refunds it lists."""
    # Since API 2025-03-31 a charge does not name its invoice: the invoice payment does, and
    # whichever of the two is written second ties them (sync.charge, sync.invoice_payment).
    _mirror(sync.charge, Charge, data, created, "charges")
    for refund in (data.get("refunds") or {}).get("data") or []:
        follow_stripe_refund(_mirror(sync.refund, Refund, refund, created, "refunds"))


def on_refund(data: dict, created: int) -> None:
    """Mirror a refund and move the portal's record of it along."""
    follow_stripe_refund(_mirror(sync.refund, Refund, data, created, "refunds"))


def on_checkout_completed(data: dict, created: int) -> None:
    """Link the account to its customer and mirror the subscription Checkout started.

    A paid credit pack session (mode payment) grants its credits instead.
    """
    sync.checkout_session(data)
    credit_packs.grant_for_checkout(data)
    subscription_id = data.get("subscription")
    if isinstance(subscription_id, dict):
        subscription_id = subscription_id.get("id")
    if subscription_id:
        row = _subscription_row(subscription_id)
        if row is None:
            row = sync.subscription(stripe_client().v1.subscriptions.retrieve(subscription_id))
        adopt_checkout_card(row)


def on_credit_grant(data: dict, created: int) -> None:
    """Add a credit grant made at Stripe to its account's ledger (once per grant)."""
    credits.follow_grant(data)


def _grant_customer(grant_id: str) -> str | None:
    customer = stripe_client().v1.billing.credit_grants.retrieve(grant_id).customer
    return customer if isinstance(customer, str) or customer is None else customer.id


def on_credit_balance_transaction(data: dict, created: int) -> None:
    """Record a grant's expiry, void or reinstated credits in the ledger (once each)."""
    credits.follow_transaction(data, _grant_customer)


HANDLERS: dict[str, Handler] = {
    "checkout.session.completed": on_checkout_completed,
    "customer.subscription.created": on_subscription,
    "customer.subscription.updated": on_subscription,
    "customer.subscription.deleted": on_subscription_deleted,
    "customer.subscription.trial_will_end": on_trial_will_end,
    "customer.tax_id.created": on_tax_id,
    "customer.tax_id.deleted": on_tax_id_deleted,
    "invoice.created": on_invoice,
    "invoice.finalized": on_invoice,
    "invoice.paid": on_invoice_paid,
    "invoice.payment_failed": on_invoice_payment_failed,
    "invoice.upcoming": on_invoice_upcoming,
    "invoice.payment_action_required": on_invoice,
    "invoice.voided": on_invoice,
    "invoice.marked_uncollectible": on_invoice,
    "payment_intent.succeeded": on_payment_intent,
    "payment_intent.payment_failed": on_payment_intent,
    "payment_method.attached": on_payment_method,
    "payment_method.detached": on_payment_method,
    "customer.updated": on_customer,
    "customer.deleted": on_customer_deleted,
    "charge.succeeded": on_charge,
    "charge.failed": on_charge,
    "charge.refunded": on_charge,
    "refund.created": on_refund,
    "refund.updated": on_refund,
    "refund.failed": on_refund,
    "charge.refund.updated": on_refund,
    "billing.credit_grant.created": on_credit_grant,
    "billing.credit_balance_transaction.created": on_credit_balance_transaction,
}


def process_event(event_id: int) -> str:
    """Apply one stored event in one transaction; keep failures with their error for retry."""
    for attempt in range(CONFLICT_RETRIES):
        row = db.session.get(WebhookEvent, event_id, with_for_update=True)
        if row is None or row.status in ("processed", "ignored"):
            db.session.rollback()
            return row.status if row is not None else "missing"
        handler = HANDLERS.get(row.type)
        if handler is None:
            row.transition("ignored")
            db.session.commit()
            return row.status
        event = json.loads(row.payload)
        token = _processing.set(event)
        received = _received_at.set(row.received_at)
        try:
            handler(event["data"]["object"], event["created"])
            row.transition("processed")
            db.session.commit()
            return row.status
        except (IntegrityError, OperationalError) as exc:
            db.session.rollback()
            # Another event for the same object inserted its row (or held its lock) first:
            # run again, now finding and locking that row.
            if attempt + 1 < CONFLICT_RETRIES:
                continue
            error = exc
        except Exception as exc:  # noqa: BLE001 - any handler failure is kept for retry
            db.session.rollback()
            error = exc
        finally:
            _processing.reset(token)
            _received_at.reset(received)
        break
    row = db.session.get(WebhookEvent, event_id)
    row.transition("failed", f"{type(error).__name__}: {error}")
    db.session.commit()
    return row.status


def retry_failed_events(limit: int = 100) -> dict[str, int]:
    """Process failed (and never processed) events again, oldest first; count outcomes."""
    query = (
        db.select(WebhookEvent.id)
        .where(WebhookEvent.status.in_(("failed", "pending")))
        .order_by(WebhookEvent.stripe_created, WebhookEvent.id)
        .limit(limit)
    )
    outcomes: dict[str, int] = {}
    for event_id in list(db.session.scalars(query)):
        status = process_event(event_id)
        outcomes[status] = outcomes.get(status, 0) + 1
    return outcomes


def failed_events(limit: int = 50) -> list[WebhookEvent]:
    """Return events whose processing failed, newest first."""
    query = (
        db.select(WebhookEvent)
        .where(WebhookEvent.status == "failed")
        .order_by(WebhookEvent.id.desc())
        .limit(limit)
    )
    return list(db.session.scalars(query))
