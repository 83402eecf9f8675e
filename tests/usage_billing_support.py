"""Builders the usage billing tests share: a customer on a test clock subscribed like Checkout."""
from __future__ import annotations

import time

from portal.extensions import db
from portal.services import sync
from portal.services.catalog import plan_price
from portal.services.metered_items import checkout_line_items

HOUR = 3600


def on_clock(stripe_api, user, start: int):
    """Give the user's account a Stripe customer with a card, on a test clock at `start`."""
    clock = stripe_api.v1.test_helpers.test_clocks.create(params={"frozen_time": start})
    customer = stripe_api.v1.customers.create(params={
        "email": user.email, "test_clock": clock.id,
        "metadata": {"account_id": str(user.account_id)}})
    sync.link_customer(user.account, customer.id)
    db.session.commit()
    card = stripe_api.v1.payment_methods.attach("pm_card_visa", params={"customer": customer.id})
    stripe_api.v1.customers.update(customer.id, params={
        "invoice_settings": {"default_payment_method": card.id}})
    return clock, customer


def subscribe(stripe_api, customer_id: str, lookup_key: str, *, metered: bool = True):
    """Subscribe to a plan with the items Checkout gives it (or the plan price alone)."""
    items = [{"price": entry["price"]} for entry in checkout_line_items(plan_price(lookup_key))]
    return stripe_api.v1.subscriptions.create(params={
        "customer": customer_id, "items": items if metered else items[:1]})


def advance(stripe_api, clock, to: int, deliver_webhooks) -> None:
    """Move the test clock to `to` and let the sandbox's webhooks update the mirror."""
    stripe_api.v1.test_helpers.test_clocks.advance(clock.id, params={"frozen_time": to})
    deliver_webhooks()
    db.session.expire_all()


def now() -> int:
    """Return the wall clock in Unix seconds."""
    return int(time.time())
