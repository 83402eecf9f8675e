"""Builders shared by the sandbox billing tests (catalog, customers with cards, events)."""

from __future__ import annotations

from typing import Any

import stripe

from tests.sandbox.fixture_reference import REFERENCE

DAY = 86_400


def fixture_keys(object_type: str) -> set[str]:
    """Return the top-level keys of Stripe's published example of an object type."""
    return REFERENCE[object_type]


def price(
    client: stripe.StripeClient,
    amount: int = 1000,
    currency: str = "usd",
    interval: str = "month",
    name: str = "Pro",
    **params: Any,
) -> Any:
    """Create a recurring price on a new product."""
    product = client.v1.products.create(params={"name": name})
    body = {
        "product": product.id,
        "currency": currency,
        "recurring": {"interval": interval, **params.pop("recurring", {})},
        **params,
    }
    if "unit_amount" not in body and "tiers" not in body:
        body["unit_amount"] = amount
    return client.v1.prices.create(params=body)


def customer(client: stripe.StripeClient, card: str | None = "pm_card_visa", **params: Any) -> Any:
    """Create a customer whose default payment method is the given test card."""
    cus = client.v1.customers.create(params={"email": "payer@example.com", **params})
    if card:
        pm = client.v1.payment_methods.attach(card, params={"customer": cus.id})
        cus = client.v1.customers.update(
            cus.id, params={"invoice_settings": {"default_payment_method": pm.id}}
        )
    return cus


def subscribe(client: stripe.StripeClient, cus: Any, *prices: Any, **params: Any) -> Any:
    """Create a subscription to prices (quantity 1 each)."""
    items = [{"price": p.id} for p in prices]
    return client.v1.subscriptions.create(params={"customer": cus.id, "items": items, **params})


def event_types(client: stripe.StripeClient, prefixes: tuple[str, ...] = ("",)) -> list[str]:
    """Return event types in the order they happened (oldest first), filtered by prefix."""
    events: list[Any] = []
    params: dict[str, Any] = {"limit": 100}
    while True:
        page = client.v1.events.list(params=params)
        events += page.data
        if not page.has_more:
            break
        params["starting_after"] = page.data[-1].id
    events.reverse()
    return [e.type for e in events if e.type.startswith(prefixes)]
