"""Stripe webhook intake: store each event once, then process it through one handler table."""
from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial

from sqlalchemy.exc import IntegrityError, OperationalError

from portal.extensions import db
from portal.models import (
    Account,
    Charge,
    Invoice,
    PaymentMethod,
    Refund,
    Subscription,
    TaxId,
    WebhookEvent,
)
from portal.services import credit_packs, credits, invoice_mirror, mrr, notices, sync
from portal.services.payment_methods import adopt_checkout_card
from portal.services.refunds import follow_stripe_refund
from portal.services.stripe_client import (
    as_dict,
    construct_event,
    response_version,
    stripe_client,
)

Handler = Callable[[dict, int], None]
CONFLICT_RETRIES = 3


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


def record_event(payload: bytes, signature: str | None) -> WebhookEvent:
    """Verify the signature and store the raw event; raise DuplicateEvent if seen before."""
    try:
        event = as_dict(construct_event(payload, signature))
    except (AttributeError, TypeError, KeyError) as exc:
        # Signed JSON that is not an object (a list, a string) fails inside the SDK's parser.
        raise ValueError("payload is not a Stripe event") from exc
    data = event.get("data")
    if not (
        isinstance(event.get("id"), str) and isinstance(event.get("type"), str)
        and isinstance(event.get("created"), int) and isinstance(data, dict)
        and isinstance(data.get("object"), dict)
    ):
        raise ValueError("payload is not a Stripe event")
    row = WebhookEvent(
        stripe_event_id=event["id"],
        type=event["type"],
        api_version=event.get("api_version"),
        stripe_created=event["created"],
        payload=payload.decode("utf-8"),
        stripe_customer_id=event_customer(data["object"]),
    )
    db.session.add(row)
    try:
        db.session.commit()
    except IntegrityError as exc:
        # The unique event id decided: another delivery (or thread) stored it first.
        db.session.rollback()
        raise DuplicateEvent(event["id"]) from exc
    return row


def _mirror(apply: Callable, model, data: dict, created: int,
            resource: str | Callable[[str], object]):
    """Apply an event's object, or Stripe's current copy when the event may be out of date.

    An event newer than the row carries the newest state known. One that is not newer
    (late, out of order, or in the same second) may be stale, so Stripe is asked instead
    (`resource` names the StripeClient service, e.g. "customers", or fetches by id itself);
    only then is a client needed at all.
    """
    stored = db.session.scalar(
        db.select(model.version).where(model.stripe_id_column() == data["id"]))
    if stored is not None and created <= stored:
        fetch = resource if callable(resource) else getattr(stripe_client().v1, resource).retrieve
        return apply(fetch(data["id"]))
    return apply(data, created)


def _subscription_with_coupons(subscription_id: str):
    """Fetch a subscription with its discounts' coupons, which its MRR is net of."""
    return stripe_client().v1.subscriptions.retrieve(
        subscription_id, params={"expand": [mrr.DISCOUNT_EXPAND]})


def on_subscription(data: dict, created: int) -> None:
    """Mirror a subscription from customer.subscription.* events."""
    if mrr.needs_discount_terms(data):
        data = as_dict(_subscription_with_coupons(data["id"]))
    # A re-fetched copy is dated by Stripe's response; the change happened at the event.
    _mirror(partial(sync.subscription, at=created), Subscription, data, created,
            _subscription_with_coupons)


def on_invoice(data: dict, created: int) -> Invoice:
    """Mirror an invoice from invoice.* events, with all its lines, tax rates and payments."""
    client = stripe_client()
    version: int | None = created
    stored = db.session.scalar(db.select(Invoice.version).where(
        Invoice.stripe_invoice_id == data["id"]))
    if stored is not None and created <= stored:
        fresh = client.v1.invoices.retrieve(data["id"])
        # Fetched now, so at least as new as the row: a test clock's event times run ahead
        # of the wall clock a response is dated by.
        data, version = as_dict(fresh), max(stored, response_version(fresh) or 0)
    return sync.invoice(data, version, **invoice_extras(client, data))


def invoice_extras(client, data: dict) -> dict:
    """Fetch what an invoice payload leaves out: lines past the first page, the tax rates
    its taxes name, and its payments (linking charges, and the last failure's reason)."""
    extras: dict = {}
    if (data.get("lines") or {}).get("has_more"):
        extras["lines"] = [as_dict(line) for line in client.v1.invoices.line_items.list(
            data["id"], params={"limit": 100}).auto_paging_iter()]
    rate_ids = invoice_mirror.tax_rate_ids(data)
    if rate_ids:
        extras["tax_rates"] = {rate_id: as_dict(client.v1.tax_rates.retrieve(rate_id))
                               for rate_id in sorted(rate_ids)}
    if data.get("status") in ("open", "paid") and (data.get("attempt_count") or
                                                   data.get("amount_paid")):
        payments = client.v1.invoice_payments.list(params={
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
    """Drop a customer's deleted tax id from the mirror."""
    sync.tax_id({**data, "deleted": True}, created)


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
    if known is None:
        sync.charge(stripe_client().v1.charges.retrieve(charge_id))


def on_charge(data: dict, created: int) -> None:
    """Mirror a charge, the invoice it paid and the refunds it lists."""
    row = _mirror(sync.charge, Charge, data, created, "charges")
    if (row is not None and row.status == "succeeded" and row.stripe_invoice_id is None
            and row.stripe_payment_intent_id):
        # Since API 2025-03-31 a charge does not name its invoice: the invoice payment does.
        payments = stripe_client().v1.invoice_payments.list(params={"payment": {
            "type": "payment_intent", "payment_intent": row.stripe_payment_intent_id}})
        for payment in payments.data:
            sync.invoice_payment(payment)
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
