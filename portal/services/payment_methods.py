"""Cards on file: adding through a SetupIntent, choosing the default, removing."""
from __future__ import annotations

import re
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


SETUP_ATTEMPT = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


def create_setup_intent(account: Account, attempt: str | None = None) -> str:
    """Start saving a card for off-session use; return the SetupIntent's client secret.

    `attempt` is the token the payment methods page was rendered with: a double click, or a
    retry after Stripe's answer was lost, replays the same SetupIntent (which can be
    confirmed again after a declined card); a new page is a new attempt.
    """
    customer_id = ensure_stripe_customer(account)
    if not attempt or not SETUP_ATTEMPT.match(attempt):
        attempt = secrets.token_urlsafe(16)
    intent = stripe_client().v1.setup_intents.create(
        params={"customer": customer_id, "usage": "off_session",
                "payment_method_types": ["card"],
                "metadata": {"account_id": str(account.id)}},
        options={"idempotency_key": f"setup-{account.id}-{attempt}"},
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
    # A new card never silently takes over the invoices: only when the customer asked.
    if make_default:
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


class DefaultCardRemoval(PaymentMethodRefused):
    """Raised when removing the default card was not confirmed; names the card taking over."""

    def __init__(self, card: PaymentMethod, successor: PaymentMethod | None):
        super().__init__("This is your default card: confirm that you want to remove it.")
        self.card = card
        self.successor = successor


def adopt_checkout_card(subscription: Subscription) -> None:
    """Make the card paid with in Checkout the customer's default for invoices.

    Checkout sets it on the subscription only; the customer's invoice_settings would otherwise
    name no card, and later invoices (and the card list) would not know which card pays.
    """
    account = subscription.account
    card_id = subscription.default_payment_method_id
    if account is None or card_id is None or account.default_payment_method_id == card_id:
        return
    customer = stripe_client().v1.customers.update(
        subscription.stripe_customer_id,
        params={"invoice_settings": {"default_payment_method": card_id}},
        options={"idempotency_key": f"checkout-default-{subscription.stripe_subscription_id}"})
    sync.customer(customer)


def remove_card(account: Account, payment_method_id: str, confirmed: bool = False, *,
                actor: User | None = None, ip: str | None = None) -> None:
    """Detach a card; the default only once confirmed, the last never while a plan needs it."""
    card = _card(account, payment_method_id)
    cards = list_cards(account)
    paid_live = db.session.scalar(db.select(Subscription.id).where(
        Subscription.account_id == account.id,
        Subscription.status.in_(("active", "past_due", "trialing", "incomplete"))).limit(1))
    if paid_live is not None and len(cards) <= 1:
        raise PaymentMethodRefused(
            "This is your only card and your subscription needs one: add another card first.")
    if account.default_payment_method_id == payment_method_id and not confirmed:
        others = [other for other in cards if other.id != card.id]
        raise DefaultCardRemoval(card, others[0] if others else None)
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
