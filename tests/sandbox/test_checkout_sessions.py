"""Checkout Sessions through the official SDK: create, retrieve, line items, list, expire."""

from __future__ import annotations

import time
from typing import Any

import pytest
import stripe

from tests.sandbox.billing_helpers import event_types
from tests.sandbox.checkout_support import monthly_price, one_time, page_path


@pytest.fixture
def price(stripe_client: stripe.StripeClient) -> Any:
    """Return a monthly 15.00 USD price."""
    return monthly_price(stripe_client)


def test_create_subscription_session(stripe_client: stripe.StripeClient, price: Any) -> None:
    session = stripe_client.v1.checkout.sessions.create(
        params={
            "mode": "subscription",
            "line_items": [{"price": price.id, "quantity": 3}],
            "success_url": "https://shop.test/ok?id={CHECKOUT_SESSION_ID}",
            "cancel_url": "https://shop.test/cancel",
            "customer_email": "a@example.com",
            "client_reference_id": "acct_7",
            "metadata": {"plan": "team"},
            "allow_promotion_codes": True,
        }
    )
    assert session.id.startswith("cs_test_") and session.object == "checkout.session"
    assert (session.status, session.payment_status, session.mode) == (
        "open",
        "unpaid",
        "subscription",
    )
    assert (session.amount_subtotal, session.amount_total, session.currency) == (4500, 4500, "usd")
    assert session.url.endswith(f"/c/pay/{session.id}")
    assert session.metadata.to_dict() == {"plan": "team"}
    assert session.allow_promotion_codes is True and session.subscription is None
    assert 23 * 3600 < session.expires_at - session.created <= 24 * 3600
    fetched = stripe_client.v1.checkout.sessions.retrieve(
        session.id, params={"expand": ["line_items"]}
    )
    item = fetched.line_items.data[0]
    assert (item.object, item.description, item.quantity, item.amount_total) == (
        "item",
        "Team plan",
        3,
        4500,
    )
    assert item.price.id == price.id
    listed = stripe_client.v1.checkout.sessions.line_items.list(session.id)
    assert [i.id for i in listed.data] == [item.id]


def test_trial_session_is_due_nothing_today(stripe_client: stripe.StripeClient, price: Any) -> None:
    session = stripe_client.v1.checkout.sessions.create(
        params={
            "mode": "subscription",
            "line_items": [{"price": price.id, "quantity": 1}],
            "subscription_data": {"trial_period_days": 14},
            "success_url": "https://shop.test/ok",
        }
    )
    assert (session.amount_total, session.payment_status) == (0, "no_payment_required")


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"line_items": [{"quantity": 1}]}, "Missing required param: mode."),
        ({"mode": "payment"}, "Missing required param: line_items."),
        (
            {"mode": "setup", "currency": "usd", "line_items": [{"price": "x", "quantity": 1}]},
            "You cannot pass `line_items` in `setup` mode.",
        ),
        (
            {"mode": "payment", "line_items": [{"price": "price_missing", "quantity": 1}]},
            "No such price: 'price_missing'",
        ),
        (
            {"mode": "payment", "customer": "cus_nobody", "line_items": [{"price": "p"}]},
            "No such customer: 'cus_nobody'",
        ),
        (
            {"mode": "payment", "line_items": [{"price": "p", "quantity": 1}], "bogus": "1"},
            "Received unknown parameter: bogus",
        ),
    ],
)
def test_create_rejects_bad_input(
    stripe_client: stripe.StripeClient, params: dict, message: str
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        stripe_client.v1.checkout.sessions.create(params=params)
    assert caught.value.user_message.startswith(message)


def test_modes_must_match_prices(stripe_client: stripe.StripeClient, price: Any) -> None:
    with pytest.raises(stripe.InvalidRequestError, match="recurring price"):
        stripe_client.v1.checkout.sessions.create(
            params={"mode": "payment", "line_items": [{"price": price.id, "quantity": 1}]}
        )
    widget = one_time(stripe_client, 500, "usd")
    with pytest.raises(stripe.InvalidRequestError, match="at least one recurring price"):
        stripe_client.v1.checkout.sessions.create(
            params={"mode": "subscription", "line_items": [{"price": widget.id, "quantity": 1}]}
        )
    with pytest.raises(stripe.InvalidRequestError, match="customer, customer_email"):
        stripe_client.v1.checkout.sessions.create(
            params={
                "mode": "subscription",
                "line_items": [{"price": price.id, "quantity": 1}],
                "customer": stripe_client.v1.customers.create().id,
                "customer_email": "a@b.test",
            }
        )


def test_expires_at_bounds_and_expire(
    stripe_client: stripe.StripeClient, sandbox: Any, price: Any
) -> None:
    base = {"mode": "subscription", "line_items": [{"price": price.id, "quantity": 1}]}
    with pytest.raises(stripe.InvalidRequestError, match="at least 30 minutes"):
        stripe_client.v1.checkout.sessions.create(
            params={**base, "expires_at": int(time.time()) + 60}
        )
    with pytest.raises(stripe.InvalidRequestError, match="less than 24 hours"):
        stripe_client.v1.checkout.sessions.create(
            params={**base, "expires_at": int(time.time()) + 25 * 3600}
        )
    wanted = int(time.time()) + 3600
    session = stripe_client.v1.checkout.sessions.create(params={**base, "expires_at": wanted})
    assert session.expires_at == wanted
    expired = stripe_client.v1.checkout.sessions.expire(session.id)
    assert (expired.status, expired.url) == ("expired", None)
    with pytest.raises(stripe.InvalidRequestError, match="can be expired"):
        stripe_client.v1.checkout.sessions.expire(session.id)
    assert "checkout.session.expired" in event_types(stripe_client)
    page = sandbox.app.test_client().get(page_path(session))
    assert "This checkout session has expired" in page.get_data(as_text=True)


def test_list_filters(stripe_client: stripe.StripeClient, price: Any) -> None:
    customer = stripe_client.v1.customers.create(params={"email": "list@example.com"})
    base = {"mode": "subscription", "line_items": [{"price": price.id, "quantity": 1}]}
    mine = stripe_client.v1.checkout.sessions.create(params={**base, "customer": customer.id})
    other = stripe_client.v1.checkout.sessions.create(params=base)
    stripe_client.v1.checkout.sessions.expire(other.id)
    listed = stripe_client.v1.checkout.sessions.list(params={"customer": customer.id})
    assert [s.id for s in listed.data] == [mine.id]
    expired = stripe_client.v1.checkout.sessions.list(params={"status": "expired"})
    assert [s.id for s in expired.data] == [other.id]


def test_session_expires_on_its_customers_clock(
    stripe_client: stripe.StripeClient, sandbox: Any, price: Any
) -> None:
    start = int(time.time())
    clock = stripe_client.v1.test_helpers.test_clocks.create(params={"frozen_time": start})
    customer = stripe_client.v1.customers.create(params={"test_clock": clock.id})
    session = stripe_client.v1.checkout.sessions.create(
        params={
            "mode": "subscription",
            "customer": customer.id,
            "line_items": [{"price": price.id, "quantity": 1}],
        }
    )
    assert session.expires_at == start + 24 * 3600
    stripe_client.v1.test_helpers.test_clocks.advance(
        clock.id, params={"frozen_time": start + 25 * 3600}
    )
    expired = stripe_client.v1.checkout.sessions.retrieve(session.id)
    assert (expired.status, expired.url) == ("expired", None)
    assert "checkout.session.expired" in event_types(stripe_client)
    page = sandbox.app.test_client().get(page_path(session))
    assert "has expired" in page.get_data(as_text=True)
