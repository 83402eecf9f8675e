"""Checkout Sessions through the official SDK, and the hosted page without a browser.

The hosted page is a plain HTML form, so its flows that need no JavaScript (trials, setup
mode, promotion codes, money formatting, expiry) are driven here with the sandbox app's
test client against the same store the SDK talks to.
"""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
import stripe

TOKEN = re.compile(r'name="form_token" value="([^"]+)"')


@pytest.fixture
def price(stripe_client: stripe.StripeClient) -> Any:
    """Return a monthly 15.00 USD price."""
    product = stripe_client.v1.products.create(params={"name": "Team plan"})
    return stripe_client.v1.prices.create(
        params={
            "product": product.id,
            "currency": "usd",
            "unit_amount": 1500,
            "recurring": {"interval": "month"},
        }
    )


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


def types(client: stripe.StripeClient) -> list[str]:
    """Return recorded event types, oldest first."""
    return [e.type for e in reversed(client.v1.events.list(params={"limit": 100}).data)]


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
    assert "checkout.session.expired" in types(stripe_client)
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


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [
        (1500, "jpy", "¥1,500"),
        (1500, "usd", "$15.00"),
        (1500, "kwd", "1.500"),
    ],
)
def test_page_formats_money_by_currency_exponent(
    stripe_client: stripe.StripeClient, sandbox: Any, amount: int, currency: str, shown: str
) -> None:
    widget = one_time(stripe_client, amount, currency)
    session = stripe_client.v1.checkout.sessions.create(
        params={"mode": "payment", "line_items": [{"price": widget.id, "quantity": 1}]}
    )
    html = sandbox.app.test_client().get(page_path(session)).get_data(as_text=True)
    assert shown in html
    assert 'for="number">Card number' in html and 'for="email">Email' in html


def test_trial_checkout_creates_trialing_subscription(
    stripe_client: stripe.StripeClient, sandbox: Any, price: Any
) -> None:
    session = stripe_client.v1.checkout.sessions.create(
        params={
            "mode": "subscription",
            "line_items": [{"price": price.id, "quantity": 1}],
            "subscription_data": {"trial_period_days": 7, "metadata": {"src": "trial"}},
            "customer_email": "trial@example.com",
            "success_url": "https://shop.test/ok",
            "cancel_url": "https://shop.test/back",
        }
    )
    html = sandbox.app.test_client().get(page_path(session)).get_data(as_text=True)
    assert "Start trial" in html and "https://shop.test/back" in html
    answer = pay(sandbox, session)
    assert answer.status_code == 303 and answer.location == "https://shop.test/ok"
    done = stripe_client.v1.checkout.sessions.retrieve(
        session.id, params={"expand": ["subscription"]}
    )
    assert (done.status, done.payment_status) == ("complete", "no_payment_required")
    sub = done.subscription
    assert sub.status == "trialing" and sub.metadata.to_dict() == {"src": "trial"}
    assert sub.trial_end - sub.trial_start == 7 * 86400
    pm = stripe_client.v1.payment_methods.retrieve(sub.default_payment_method)
    assert pm.customer == done.customer
    assert types(stripe_client)[-1] == "checkout.session.completed"


def test_setup_mode_attaches_card_to_customer(
    stripe_client: stripe.StripeClient, sandbox: Any
) -> None:
    customer = stripe_client.v1.customers.create(params={"email": "setup@example.com"})
    session = stripe_client.v1.checkout.sessions.create(
        params={
            "mode": "setup",
            "currency": "usd",
            "customer": customer.id,
            "setup_intent_data": {"metadata": {"why": "card on file"}},
            "success_url": "https://shop.test/ok?s={CHECKOUT_SESSION_ID}",
        }
    )
    assert session.setup_intent.startswith("seti_") and session.amount_total is None
    assert pay(sandbox, session).location == f"https://shop.test/ok?s={session.id}"
    done = stripe_client.v1.checkout.sessions.retrieve(
        session.id, params={"expand": ["setup_intent"]}
    )
    si = done.setup_intent
    assert si.status == "succeeded" and si.metadata.to_dict() == {"why": "card on file"}
    pm = stripe_client.v1.payment_methods.retrieve(si.payment_method)
    assert pm.customer == customer.id and done.customer == customer.id


def test_payment_mode_creates_no_customer_unless_asked(
    stripe_client: stripe.StripeClient, sandbox: Any
) -> None:
    widget = one_time(stripe_client, 2000, "eur")
    guest = stripe_client.v1.checkout.sessions.create(
        params={
            "mode": "payment",
            "line_items": [{"price": widget.id, "quantity": 1}],
            "payment_intent_data": {"metadata": {"order": "1"}},
        }
    )
    assert pay(sandbox, guest, email="guest@example.com").status_code == 303
    done = stripe_client.v1.checkout.sessions.retrieve(
        guest.id, params={"expand": ["payment_intent"]}
    )
    assert done.customer is None and done.customer_details.email == "guest@example.com"
    assert done.payment_intent.metadata.to_dict() == {"order": "1"}
    always = stripe_client.v1.checkout.sessions.create(
        params={
            "mode": "payment",
            "line_items": [{"price": widget.id, "quantity": 1}],
            "customer_creation": "always",
        }
    )
    assert pay(sandbox, always, email="kept@example.com").status_code == 303
    kept = stripe_client.v1.checkout.sessions.retrieve(always.id)
    assert stripe_client.v1.customers.retrieve(kept.customer).email == "kept@example.com"


def test_page_reports_missing_email_and_bad_card(
    stripe_client: stripe.StripeClient, sandbox: Any
) -> None:
    widget = one_time(stripe_client, 2000, "usd")
    session = stripe_client.v1.checkout.sessions.create(
        params={"mode": "payment", "line_items": [{"price": widget.id, "quantity": 1}]}
    )
    assert "Your email is incomplete." in pay(sandbox, session).get_data(as_text=True)
    bad = pay(sandbox, session, number="4242424242424241", email="x@example.com")
    assert "Your card number is incorrect." in bad.get_data(as_text=True)
    assert stripe_client.v1.checkout.sessions.retrieve(session.id).status == "open"


def test_promotion_code_lowers_the_total(
    stripe_client: stripe.StripeClient, sandbox: Any, price: Any
) -> None:
    coupon = stripe_client.v1.coupons.create(params={"percent_off": 20, "duration": "once"})
    stripe_client.v1.promotion_codes.create(
        params={"promotion": {"type": "coupon", "coupon": coupon.id}, "code": "SPRING"}
    )
    session = stripe_client.v1.checkout.sessions.create(
        params={
            "mode": "subscription",
            "line_items": [{"price": price.id, "quantity": 1}],
            "allow_promotion_codes": True,
            "customer_email": "promo@example.com",
        }
    )
    web = sandbox.app.test_client()
    token = TOKEN.search(web.get(page_path(session)).get_data(as_text=True)).group(1)
    wrong = web.post(
        page_path(session),
        data={"form_token": token, "action": "apply_code", "promotion_code": "WINTER"},
    )
    assert "This code is invalid." in wrong.get_data(as_text=True)
    right = web.post(
        page_path(session),
        data={"form_token": token, "action": "apply_code", "promotion_code": "spring"},
    )
    assert "$12.00" in right.get_data(as_text=True)
    updated = stripe_client.v1.checkout.sessions.retrieve(session.id)
    assert updated.amount_total == 1200 and updated.total_details.amount_discount == 300
    assert pay(sandbox, session).status_code == 303
    done = stripe_client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["invoice"]})
    assert done.invoice.amount_paid == 1200


def test_forged_form_is_refused(
    stripe_client: stripe.StripeClient, sandbox: Any, price: Any
) -> None:
    session = stripe_client.v1.checkout.sessions.create(
        params={"mode": "subscription", "line_items": [{"price": price.id, "quantity": 1}]}
    )
    answer = sandbox.app.test_client().post(
        page_path(session),
        data={"form_token": "guess", "action": "pay", "number": "4242424242424242"},
    )
    assert answer.status_code == 400
    assert stripe_client.v1.customers.list().data == []


def test_three_d_secure_redirects_through_the_challenge(
    stripe_client: stripe.StripeClient, sandbox: Any
) -> None:
    widget = one_time(stripe_client, 5000, "usd")
    session = stripe_client.v1.checkout.sessions.create(
        params={
            "mode": "payment",
            "line_items": [{"price": widget.id, "quantity": 1}],
            "customer_email": "auth@example.com",
            "success_url": "https://shop.test/ok",
        }
    )
    challenge = pay(sandbox, session, number="4000002500003155")
    assert challenge.status_code == 303 and "/three_d_secure/pi_" in challenge.location
    web = sandbox.app.test_client()
    page = web.get(challenge.location).get_data(as_text=True)
    assert "$50.00" in page and "ending in 3155" in page
    secret = challenge.location.split("client_secret=")[1]
    back = web.post(
        challenge.location.split("?")[0], data={"client_secret": secret, "action": "complete"}
    )
    assert back.status_code == 303 and "redirect_status=succeeded" in back.location
    assert f"/c/pay/{session.id}/return?payment_intent=pi_" in back.location
    done = web.get(back.location)
    assert done.status_code == 303 and done.location == "https://shop.test/ok"
    completed = stripe_client.v1.checkout.sessions.retrieve(
        session.id, params={"expand": ["payment_intent"]}
    )
    assert completed.status == "complete" and completed.payment_intent.status == "succeeded"
    assert (
        web.post(
            challenge.location.split("?")[0], data={"client_secret": secret, "action": "fail"}
        ).status_code
        == 409
    )


def test_challenge_page_refuses_a_wrong_secret(
    stripe_client: stripe.StripeClient, sandbox: Any
) -> None:
    intent = stripe_client.v1.payment_intents.create(
        params={
            "amount": 1000,
            "currency": "usd",
            "payment_method": "pm_card_authenticationRequired",
            "confirm": True,
        }
    )
    web = sandbox.app.test_client()
    assert web.get(f"/three_d_secure/{intent.id}?client_secret=wrong").status_code == 404
    answer = web.post(
        f"/three_d_secure/{intent.id}", data={"client_secret": "x", "action": "complete"}
    )
    assert answer.status_code == 404
    assert stripe_client.v1.payment_intents.retrieve(intent.id).status == "requires_action"


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
    assert "checkout.session.expired" in types(stripe_client)
    page = sandbox.app.test_client().get(page_path(session))
    assert "has expired" in page.get_data(as_text=True)


def test_trial_card_failing_authentication_can_be_replaced(
    stripe_client: stripe.StripeClient, sandbox: Any, price: Any
) -> None:
    session = stripe_client.v1.checkout.sessions.create(
        params={
            "mode": "subscription",
            "line_items": [{"price": price.id, "quantity": 1}],
            "subscription_data": {"trial_period_days": 30},
            "customer_email": "retry@example.com",
            "success_url": "https://shop.test/ok",
        }
    )
    challenge = pay(sandbox, session, number="4000002500003155")
    assert "/three_d_secure/seti_" in challenge.location
    web = sandbox.app.test_client()
    secret = challenge.location.split("client_secret=")[1]
    back = web.post(
        challenge.location.split("?")[0], data={"client_secret": secret, "action": "fail"}
    )
    assert "redirect_status=failed" in back.location
    page = web.get(back.location).get_data(as_text=True)
    assert "We are unable to authenticate your payment method." in page
    assert pay(sandbox, session, number="4242424242424242").location == "https://shop.test/ok"
    done = stripe_client.v1.checkout.sessions.retrieve(
        session.id, params={"expand": ["subscription"]}
    )
    assert done.subscription.status == "trialing"
    setups = stripe_client.v1.setup_intents.list(params={"customer": done.customer}).data
    assert [s.status for s in setups] == ["succeeded"]
    assert stripe_client.v1.customers.list(params={"email": "retry@example.com"}).data[0].id == (
        done.customer
    )
