"""Starting a subscription through Stripe Checkout."""
from __future__ import annotations

import time

from portal.extensions import db
from portal.models import Account, Price, Subscription, User
from portal.models.subscription import LIVE_STATUSES
from portal.services.audit import record_audit
from portal.services.customers import ensure_stripe_customer
from portal.services.refusals import BillingRefused
from portal.services.stripe_client import request_id, stripe_client


class CheckoutRefused(BillingRefused):
    """Raised when a Checkout cannot start (unknown price, already subscribed...)."""


def live_subscription(account: Account) -> Subscription | None:
    """Return the account's newest subscription that gives (or is about to give) service."""
    query = (
        db.select(Subscription)
        .where(Subscription.account_id == account.id, Subscription.status.in_(LIVE_STATUSES))
        .order_by(Subscription.stripe_created.desc())
        .limit(1)
    )
    return db.session.scalar(query)


def had_subscription(account: Account) -> bool:
    """Return True when the account ever had a subscription (trials are for newcomers)."""
    query = db.select(Subscription.id).where(Subscription.account_id == account.id).limit(1)
    return db.session.scalar(query) is not None


def checkout_price(lookup_key: str) -> Price:
    """Return the active licensed price a customer may start a subscription on."""
    price = db.session.scalar(db.select(Price).where(
        Price.lookup_key == lookup_key, Price.active, Price.usage_type == "licensed"))
    if price is None or price.stripe_price_id is None or price.unit_amount == 0:
        raise CheckoutRefused("That plan cannot be bought online.")
    if price.product.contact_sales or not price.product.active:
        raise CheckoutRefused("That plan cannot be bought online.")
    return price


def start_checkout(account: Account, lookup_key: str, success_url: str, cancel_url: str, *,
                   actor: User | None = None, ip: str | None = None) -> str:
    """Create a Checkout Session for the plan price and return the page to send the customer to."""
    price = checkout_price(lookup_key)
    if live_subscription(account) is not None:
        raise CheckoutRefused("You already have a subscription: change its plan instead.")
    customer_id = ensure_stripe_customer(account)
    subscription_data: dict = {"metadata": {"account_id": str(account.id),
                                            "plan_key": price.product.key}}
    if price.product.trial_days and not had_subscription(account):
        subscription_data["trial_period_days"] = price.product.trial_days
    # One session per account, price and minute: a double click reuses the first session.
    minute = int(time.time() // 60)
    session = stripe_client().v1.checkout.sessions.create(
        params={
            "mode": "subscription",
            "customer": customer_id,
            "client_reference_id": str(account.id),
            "line_items": [{"price": price.stripe_price_id, "quantity": 1}],
            "allow_promotion_codes": True,
            "subscription_data": subscription_data,
            "metadata": {"account_id": str(account.id), "lookup_key": lookup_key},
            "success_url": success_url,
            "cancel_url": cancel_url,
        },
        options={"idempotency_key": f"checkout-{account.id}-{lookup_key}-{minute}"},
    )
    record_audit(actor, "checkout.started", "checkout_session", session.id,
                 amount=price.unit_amount, currency=price.currency,
                 stripe_request_id=request_id(session), ip=ip,
                 details={"account_id": account.id, "plan": lookup_key,
                          "trial_days": subscription_data.get("trial_period_days")})
    db.session.commit()
    return session.url
