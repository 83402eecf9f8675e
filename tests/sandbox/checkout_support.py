"""Helpers for the Checkout Session tests: prices, the hosted form, recorded events."""

from __future__ import annotations

import re
from typing import Any

import stripe

TOKEN = re.compile(r'name="form_token" value="([^"]+)"')


def one_time(client: stripe.StripeClient, amount: int, currency: str) -> Any:
    """Create a one-time price."""
    product = client.v1.products.create(params={"name": f"Widget {currency}"})
    return client.v1.prices.create(
        params={"product": product.id, "currency": currency, "unit_amount": amount}
    )


def page_path(session: Any) -> str:
    """Return the path of a session's hosted page (its url without scheme and host)."""
    return "/" + session.url.split("/", 3)[3]


def pay(sandbox: Any, session: Any, number: str = "4242424242424242", **fields: str) -> Any:
    """Submit the hosted payment form like a person would and return the response."""
    web = sandbox.app.test_client()
    html = web.get(page_path(session)).get_data(as_text=True)
    form = {
        "form_token": TOKEN.search(html).group(1),
        "action": "pay",
        "number": number,
        "expiry": "12 / 34",
        "cvc": "123",
        "name": "Jenny Rosen",
        **fields,
    }
    return web.post(page_path(session), data=form)


def monthly_price(
    client: stripe.StripeClient, amount: int = 1500, currency: str = "usd", recurring: bool = True
) -> Any:
    """Create a product and a price for it."""
    product = client.v1.products.create(params={"name": "Team plan"})
    params: dict[str, Any] = {"product": product.id, "currency": currency, "unit_amount": amount}
    if recurring:
        params["recurring"] = {"interval": "month"}
    return client.v1.prices.create(params=params)
