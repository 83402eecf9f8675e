"""Stripe webhook intake: store each event once, then process it through one handler table."""
from __future__ import annotations

import json
from collections.abc import Callable

from sqlalchemy.exc import IntegrityError, OperationalError

from portal.extensions import db
from portal.models import (
    Account,
    Charge,
    Invoice,
    PaymentMethod,
    Refund,
    Subscription,
    WebhookEvent,
)
from portal.services import sync
from portal.services.payment_methods import adopt_checkout_card
from portal.services.stripe_client import as_dict, construct_event, stripe_client

Handler = Callable[[dict, int], None]
CONFLICT_RETRIES = 3


class DuplicateEvent(Exception):
    """Raised when an event id was received before."""


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
    )
    db.session.add(row)
    try:
        db.session.commit()
    except IntegrityError as exc:
        # The unique event id decided: another delivery (or thread) stored it first.
        db.session.rollback()
        raise DuplicateEvent(event["id"]) from exc
    return row


def _mirror(apply: Callable, model, data: dict, created: int, resource: str):
    """Apply an event's object, or Stripe's current copy when the event may be out of date.

    An event newer than the row carries the newest state known. One that is not newer
    (late, out of order, or in the same second) may be stale, so Stripe is asked instead
    (`resource` names the StripeClient service, e.g. "customers"); only then is a client
    needed at all.
    """
    stored = db.session.scalar(
        db.select(model.version).where(model.stripe_id_column() == data["id"]))
    if stored is not None and created <= stored:
        return apply(getattr(stripe_client().v1, resource).retrieve(data["id"]))
    return apply(data, created)


def on_subscription(data: dict, created: int) -> None:
    """Mirror a subscription from customer.subscription.* events."""
    _mirror(sync.subscription, Subscription, data, created, "subscriptions")


def on_invoice(data: dict, created: int) -> None:
    """Mirror an invoice from invoice.* events."""
    _mirror(sync.invoice, Invoice, data, created, "invoices")


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
    """Mirror a charge and the refunds it lists."""
    _mirror(sync.charge, Charge, data, created, "charges")
    for refund in (data.get("refunds") or {}).get("data") or []:
        _mirror(sync.refund, Refund, refund, created, "refunds")


def on_refund(data: dict, created: int) -> None:
    """Mirror a refund."""
    _mirror(sync.refund, Refund, data, created, "refunds")


def on_checkout_completed(data: dict, created: int) -> None:
    """Link the account to its customer and mirror the subscription Checkout started."""
    sync.checkout_session(data)
    subscription_id = data.get("subscription")
    if isinstance(subscription_id, dict):
        subscription_id = subscription_id.get("id")
    if subscription_id:
        row = sync.subscription(stripe_client().v1.subscriptions.retrieve(subscription_id))
        adopt_checkout_card(row)


HANDLERS: dict[str, Handler] = {
    "checkout.session.completed": on_checkout_completed,
    "customer.subscription.created": on_subscription,
    "customer.subscription.updated": on_subscription,
    "customer.subscription.deleted": on_subscription,
    "customer.subscription.trial_will_end": on_subscription,
    "invoice.created": on_invoice,
    "invoice.finalized": on_invoice,
    "invoice.paid": on_invoice,
    "invoice.payment_failed": on_invoice,
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
