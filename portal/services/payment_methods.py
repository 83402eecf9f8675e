"""Cards on file: adding through a SetupIntent, choosing the default, removing."""
from __future__ import annotations

import secrets

from portal.extensions import db
from portal.models import Account, PaymentMethod, Subscription, User
from portal.models.subscription import LIVE_STATUSES
from portal.services import sync
from portal.services.audit import record_audit
from portal.services.customers import ensure_stripe_customer
from portal.services.refusals import BillingRefused
from portal.services.stripe_client import as_dict, request_id, stripe_client


class PaymentMethodRefused(BillingRefused):
    """Raised when a card change is not allowed or does not belong to the account."""


def list_cards(account: Account) -> list[PaymentMethod]:
    """Return the account's cards, newest first."""
    query = (db.select(PaymentMethod).where(PaymentMethod.account_id == account.id)
             .order_by(PaymentMethod.stripe_created.desc(), PaymentMethod.id.desc()))
    return list(db.session.scalars(query))


def _card(account: Account, payment_method_id: str) -> PaymentMethod:
    """Return the account's card with this id, or refuse."""
    card = db.session.scalar(db.select(PaymentMethod).where(
        PaymentMethod.stripe_payment_method_id == payment_method_id,
        PaymentMethod.account_id == account.id))
    if card is None:
        raise PaymentMethodRefused("That card is not on this account.")
    return card


def create_setup_intent(account: Account) -> str:
    """Start saving a card for off-session use; return the SetupIntent's client secret."""
    customer_id = ensure_stripe_customer(account)
    intent = stripe_client().v1.setup_intents.create(
        params={"customer": customer_id, "usage": "off_session",
                "payment_method_types": ["card"],
                "metadata": {"account_id": str(account.id)}},
        # Each press of "add card" is its own attempt; the key guards against a resend of it.
        options={"idempotency_key": f"setup-{account.id}-{secrets.token_hex(8)}"},
    )
    return intent.client_secret


def _card_audit(action: str, account: Account, card: PaymentMethod, stripe_obj,
                actor: User | None, ip: str | None) -> None:
    """Add an audit entry for a change to one of the account's cards."""
    record_audit(actor, action, "payment_method", card.stripe_payment_method_id,
                 stripe_request_id=request_id(stripe_obj), ip=ip,
                 details={"account_id": account.id, "brand": card.brand, "last4": card.last4})


def confirm_setup(account: Account, setup_intent_id: str, make_default: bool, *,
                  actor: User | None = None, ip: str | None = None) -> PaymentMethod:
    """Record the card a succeeded SetupIntent saved, and make it the default when asked."""
    client = stripe_client()
    retrieved = client.v1.setup_intents.retrieve(
        setup_intent_id, params={"expand": ["payment_method"]})
    intent = as_dict(retrieved)
    if intent.get("customer") != account.stripe_customer_id or not account.stripe_customer_id:
        raise PaymentMethodRefused("That card setup does not belong to this account.")
    if intent["status"] != "succeeded":
        raise PaymentMethodRefused("The card was not saved: " + (
            (intent.get("last_setup_error") or {}).get("message") or intent["status"]))
    card = sync.payment_method(intent["payment_method"])
    _card_audit("card.added", account, card, retrieved, actor, ip)
    db.session.commit()
    if make_default or account.default_payment_method_id is None:
        set_default(account, card.stripe_payment_method_id, actor=actor, ip=ip)
    return card


def set_default(account: Account, payment_method_id: str, *,
                actor: User | None = None, ip: str | None = None) -> None:
    """Make a card the default for future invoices and for every live subscription."""
    card = _card(account, payment_method_id)
    client = stripe_client()
    customer = client.v1.customers.update(account.stripe_customer_id, params={
        "invoice_settings": {"default_payment_method": card.stripe_payment_method_id}})
    sync.customer(customer)
    live = db.session.scalars(db.select(Subscription).where(
        Subscription.account_id == account.id, Subscription.status.in_(LIVE_STATUSES)))
    for subscription in live:
        updated = client.v1.subscriptions.update(subscription.stripe_subscription_id, params={
            "default_payment_method": card.stripe_payment_method_id})
        sync.subscription(updated)
    _card_audit("card.made_default", account, card, customer, actor, ip)
    db.session.commit()


def remove_card(account: Account, payment_method_id: str, *,
                actor: User | None = None, ip: str | None = None) -> None:
    """Detach a card; the last card stays while a paid subscription is live."""
    card = _card(account, payment_method_id)
    cards = list_cards(account)
    paid_live = db.session.scalar(db.select(Subscription.id).where(
        Subscription.account_id == account.id,
        Subscription.status.in_(("active", "past_due", "trialing", "incomplete"))).limit(1))
    if paid_live is not None and len(cards) <= 1:
        raise PaymentMethodRefused(
            "This is your only card and your subscription needs one: add another card first.")
    detached = stripe_client().v1.payment_methods.detach(card.stripe_payment_method_id)
    sync.payment_method(detached)
    _card_audit("card.removed", account, card, detached, actor, ip)
    if account.default_payment_method_id == payment_method_id:
        remaining = [other for other in cards if other.id != card.id]
        db.session.commit()
        if remaining:
            set_default(account, remaining[0].stripe_payment_method_id, actor=actor, ip=ip)
            return
        account.default_payment_method_id = None
    db.session.commit()
