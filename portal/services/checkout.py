"""Starting a subscription through Stripe Checkout."""
from __future__ import annotations

import time

from portal.extensions import db
from portal.models import Account, Price, User
from portal.services.audit import record_audit
from portal.services.catalog import plan_price
from portal.services.customers import ensure_stripe_customer
from portal.services.metered_items import checkout_line_items
from portal.services.refusals import BillingRefused
from portal.services.stripe_client import request_id, stripe_client
from portal.services.subscriptions import had_subscription, live_subscription


class CheckoutRefused(BillingRefused):
    """Raised when a Checkout cannot start (unknown price, already subscribed...)."""


def checkout_price(lookup_key: str) -> Price:
    """Return the active licensed price a customer may start a subscription on."""
    price = plan_price(lookup_key)
    if price is None or price.unit_amount == 0 or not price.product.active:
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
            "line_items": checkout_line_items(price),
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
