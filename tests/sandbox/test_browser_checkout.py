"""Stripe's hosted Checkout page, served by the sandbox, in real headless Chromium.

Each test pays like a customer would, then checks the resulting Stripe objects and the
recorded events through the official SDK.
"""

from __future__ import annotations

from typing import Any

import pytest
import stripe

from tests.sandbox.billing_helpers import event_types
from tests.sandbox.browser_support import SECRET_KEY
from tests.sandbox.checkout_support import monthly_price

pytestmark = pytest.mark.browser
AUTH_FAILED = "We are unable to authenticate your payment method."


@pytest.fixture
def client(sandbox: Any) -> stripe.StripeClient:
    """Return the SDK client of the sandbox."""
    return sandbox.client(SECRET_KEY)


def fill_card(page: Any, number: str) -> None:
    """Type a test card into the hosted checkout form."""
    page.get_by_label("Card number").fill(number)
    page.get_by_label("Expiration (MM / YY)").fill("12 / 34")
    page.get_by_label("CVC").fill("123")
    page.get_by_label("Cardholder name").fill("Jenny Rosen")


def test_hosted_checkout_subscription(page: Any, client: stripe.StripeClient, shop: str) -> None:
    price = monthly_price(client)
    session = client.v1.checkout.sessions.create(
        params={
            "mode": "subscription",
            "line_items": [{"price": price.id, "quantity": 2}],
            "success_url": f"{shop}/success?session_id={{CHECKOUT_SESSION_ID}}",
            "cancel_url": f"{shop}/cancel",
            "client_reference_id": "account-42",
            "subscription_data": {"metadata": {"account": "42"}},
        }
    )
    page.goto(session.url)
    page.get_by_role("link", name="Cancel and go back").click()
    page.wait_for_url(f"{shop}/cancel")
    assert client.v1.checkout.sessions.retrieve(session.id).status == "open"
    page.goto(session.url)
    assert page.get_by_test_id("total-due").inner_text() == "$30.00"
    page.get_by_label("Email").fill("jenny@example.com")
    fill_card(page, "4242 4242 4242 4242")
    page.get_by_role("button", name="Subscribe").click()
    page.wait_for_url(f"{shop}/success?session_id={session.id}")

    done = client.v1.checkout.sessions.retrieve(
        session.id, params={"expand": ["subscription", "line_items"]}
    )
    assert (done.status, done.payment_status) == ("complete", "paid")
    assert done.client_reference_id == "account-42" and done.url is None
    sub = done.subscription
    assert sub.status == "active" and sub.metadata.to_dict() == {"account": "42"}
    assert sub.customer == done.customer and sub["items"].data[0].quantity == 2
    customer = client.v1.customers.retrieve(done.customer)
    assert customer.email == "jenny@example.com"
    pm = client.v1.payment_methods.retrieve(sub.default_payment_method)
    assert pm.card.last4 == "4242" and pm.customer == customer.id
    invoice = client.v1.invoices.retrieve(done.invoice)
    assert invoice.status == "paid" and invoice.amount_paid == 3000
    types = event_types(client)
    for expected in (
        "customer.created",
        "payment_method.attached",
        "customer.subscription.created",
        "invoice.paid",
        "payment_intent.succeeded",
        "checkout.session.completed",
    ):
        assert expected in types
    assert types.index("invoice.paid") < types.index("checkout.session.completed")


def test_decline_then_success(page: Any, client: stripe.StripeClient, shop: str) -> None:
    price = monthly_price(client, amount=1500, currency="kwd", recurring=False)
    session = client.v1.checkout.sessions.create(
        params={
            "mode": "payment",
            "line_items": [{"price": price.id, "quantity": 1}],
            "customer_email": "buyer@example.com",
            "success_url": f"{shop}/success?session_id={{CHECKOUT_SESSION_ID}}",
        }
    )
    page.goto(session.url)
    assert "1.500" in page.get_by_test_id("total-due").inner_text()
    fill_card(page, "4000 0000 0000 9995")
    page.get_by_role("button", name="Pay").click()
    alert = page.locator("#form-error")
    alert.wait_for()
    assert alert.inner_text() == "Your card has insufficient funds."
    assert page.locator("#form-error").get_attribute("role") == "alert"
    fill_card(page, "5555 5555 5555 4444")
    page.get_by_role("button", name="Pay").click()
    page.wait_for_url(f"{shop}/success?session_id={session.id}")

    done = client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["payment_intent"]})
    assert (done.status, done.payment_status) == ("complete", "paid")
    pi = done.payment_intent
    assert pi.status == "succeeded" and (pi.amount, pi.currency) == (1500, "kwd")
    charges = client.v1.charges.list(params={"payment_intent": pi.id}).data
    outcomes = sorted((c.status, c.to_dict()["outcome"].get("reason") or "") for c in charges)
    assert outcomes == [("failed", "insufficient_funds"), ("succeeded", "")]
    types = event_types(client)
    assert types.index("payment_intent.payment_failed") < types.index("payment_intent.succeeded")
    assert types[-1] == "checkout.session.completed"


def test_three_d_secure_fail_then_complete(
    page: Any, client: stripe.StripeClient, shop: str
) -> None:
    price = monthly_price(client, amount=2500)
    session = client.v1.checkout.sessions.create(
        params={
            "mode": "subscription",
            "line_items": [{"price": price.id, "quantity": 1}],
            "customer_email": "secure@example.com",
            "success_url": f"{shop}/success?session_id={{CHECKOUT_SESSION_ID}}",
        }
    )
    page.goto(session.url)
    fill_card(page, "4000 0025 0000 3155")
    page.get_by_role("button", name="Subscribe").click()
    page.get_by_role("button", name="Fail").click()
    alert = page.locator("#form-error")
    alert.wait_for()
    assert AUTH_FAILED in alert.inner_text()
    open_session = client.v1.checkout.sessions.retrieve(session.id)
    assert open_session.status == "open" and open_session.subscription is None

    fill_card(page, "4000 0025 0000 3155")
    page.get_by_role("button", name="Subscribe").click()
    page.get_by_role("heading", name="3D Secure test authentication").wait_for()
    page.get_by_role("button", name="Complete").click()
    page.wait_for_url(f"{shop}/success?session_id={session.id}")

    done = client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["subscription"]})
    assert done.status == "complete" and done.subscription.status == "active"
    intents = client.v1.payment_intents.list(params={"customer": done.customer}).data
    assert [i.status for i in intents] == ["succeeded"]
    failed = [
        e for e in client.v1.events.list(params={"type": "payment_intent.payment_failed"}).data
    ]
    assert (
        failed[0].data.object["last_payment_error"]["code"]
        == "payment_intent_authentication_failure"
    )
    assert "checkout.session.completed" in event_types(client)
