"""The hosted checkout and 3-D Secure pages driven without a browser.

The hosted page is a plain HTML form, so its flows that need no JavaScript (trials, setup
mode, promotion codes, money formatting, 3-D Secure redirects, a mount prefix) are driven
with the sandbox app's test client against the same store the SDK reads.
"""

from __future__ import annotations

from typing import Any

import pytest
import stripe

from tests.sandbox.billing_helpers import event_types
from tests.sandbox.checkout_support import TOKEN, monthly_price, one_time, page_path, pay


@pytest.fixture
def price(stripe_client: stripe.StripeClient) -> Any:
    """Return a monthly 15.00 USD price."""
    return monthly_price(stripe_client)


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
    assert stripe_client.v1.setup_intents.retrieve(done.setup_intent).status == "succeeded"
    pm = stripe_client.v1.payment_methods.retrieve(sub.default_payment_method)
    assert pm.customer == done.customer
    assert event_types(stripe_client)[-1] == "checkout.session.completed"


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
    reloaded = web.get(challenge.location).get_data(as_text=True)
    assert "Authentication complete" in reloaded and 'data-outcome="succeeded"' in reloaded
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


def test_hosted_urls_follow_a_mount_prefix(tmp_path: Any) -> None:
    from werkzeug.middleware.dispatcher import DispatcherMiddleware
    from werkzeug.test import Client

    from portal.sandbox import create_sandbox_app

    app = create_sandbox_app(
        {"SANDBOX_DB": str(tmp_path / "prefix.db"), "SANDBOX_DELIVERY": "manual"}
    )
    web = Client(DispatcherMiddleware(lambda env, start: [], {"/_stripe": app}))
    auth = {"Authorization": "Bearer sk_test_prefix"}

    def post(path: str, data: dict) -> dict:
        return web.post(f"/_stripe{path}", data=data, headers=auth).json

    product = post("/v1/products", {"name": "Prefixed"})
    price = post("/v1/prices", {"product": product["id"], "currency": "usd", "unit_amount": "700"})
    session = post(
        "/v1/checkout/sessions",
        {"mode": "payment", "line_items[0][price]": price["id"], "line_items[0][quantity]": "1"},
    )
    assert session["url"] == f"http://localhost/_stripe/c/pay/{session['id']}"
    html = web.get(f"/_stripe/c/pay/{session['id']}").get_data(as_text=True)
    assert f'action="/_stripe/c/pay/{session["id"]}"' in html
    assert 'href="/_stripe/static/hosted/hosted.css"' in html
    with web.get("/_stripe/v3/") as script:
        assert script.status_code == 200
        assert "elements-inner.html" in script.get_data(as_text=True)
    frame = web.get("/_stripe/v3/elements-inner.html").get_data(as_text=True)
    assert 'src="/_stripe/static/hosted/elements-inner.js"' in frame
