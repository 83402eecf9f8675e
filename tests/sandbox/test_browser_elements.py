"""The Stripe.js stand-in and its Elements in real headless Chromium.

A small "merchant" page loads ``<sandbox>/v3/`` from another origin (and, in one test, from
the same origin with the sandbox mounted under ``/_stripe`` by DispatcherMiddleware), mounts
an Element and confirms intents. Results are checked through the official SDK and events.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import stripe
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from portal.sandbox import create_sandbox_app
from tests.sandbox.billing_helpers import event_types
from tests.sandbox.browser_support import (
    PUBLISHABLE_KEY,
    SECRET_KEY,
    merchant_app,
    new_page,
    serve,
)

pytestmark = pytest.mark.browser


@pytest.fixture
def client(sandbox: Any) -> stripe.StripeClient:
    """Return the SDK client of the sandbox."""
    return sandbox.client(SECRET_KEY)


def open_shop(page: Any, shop: str, client: stripe.StripeClient, flow: str = "setup") -> Any:
    """Create the intent for a flow, open the shop page and wait for the Element to be ready."""
    customer = client.v1.customers.create(params={"email": "elements@example.com"})
    if "setup" in flow:
        intent = client.v1.setup_intents.create(params={"customer": customer.id})
    elif flow == "next-action":
        intent = client.v1.payment_intents.create(
            params={
                "amount": 1000,
                "currency": "usd",
                "customer": customer.id,
                "payment_method": "pm_card_authenticationRequired",
                "confirm": True,
            }
        )
    else:
        intent = client.v1.payment_intents.create(
            params={"amount": 2000, "currency": "jpy", "customer": customer.id}
        )
    page.goto(f"{shop}/shop?pk={PUBLISHABLE_KEY}&secret={intent.client_secret}&flow={flow}")
    page.wait_for_function("document.getElementById('events').textContent.includes('ready')")
    return intent


def type_in_element(page: Any, number: str) -> None:
    """Type card details into the Element's frame."""
    frame = page.frame_locator("#element iframe")
    frame.get_by_label("Card number").fill(number)
    frame.get_by_label("Expiration date").fill("1234")
    frame.get_by_label("Security code").fill("123")
    page.wait_for_function("document.getElementById('events').textContent.includes('complete')")


def result_of(page: Any) -> dict:
    """Wait for the shop page's confirm result and return it."""
    page.wait_for_function("document.getElementById('result').textContent.length > 0")
    return json.loads(page.locator("#result").inner_text())


def test_elements_setup_attaches_card(page: Any, client: stripe.StripeClient, shop: str) -> None:
    intent = open_shop(page, shop, client)
    # An incomplete card is reported by the Element before anything reaches the API.
    frame = page.frame_locator("#element iframe")
    frame.get_by_label("Card number").fill("4242")
    page.get_by_role("button", name="Save").click()
    assert result_of(page)["error"]["code"] == "incomplete_number"
    page.evaluate("document.getElementById('result').textContent = ''")
    type_in_element(page, "4242424242424242")
    page.get_by_role("button", name="Save").click()
    result = result_of(page)
    assert result["setupIntent"]["status"] == "succeeded"

    si = client.v1.setup_intents.retrieve(intent.id)
    pm = client.v1.payment_methods.retrieve(si.payment_method)
    assert si.status == "succeeded" and pm.customer == si.customer and pm.card.last4 == "4242"
    types = event_types(client)
    assert "payment_method.attached" in types and "setup_intent.succeeded" in types


def test_elements_under_prefix_with_three_d_secure(chromium: Any, tmp_path: Path) -> None:
    sandbox_app = create_sandbox_app(
        {"SANDBOX_DB": str(tmp_path / "prefixed.db"), "SANDBOX_DELIVERY": "manual"}
    )
    combined = DispatcherMiddleware(merchant_app("/_stripe/v3/"), {"/_stripe": sandbox_app})
    url, stop = serve(combined)
    context, tab = new_page(chromium)
    try:
        client = stripe.StripeClient(
            SECRET_KEY, base_addresses={"api": f"{url}/_stripe"}, max_network_retries=0
        )
        intent = open_shop(tab, url, client)
        type_in_element(tab, "4000002500003155")
        tab.get_by_role("button", name="Save").click()
        challenge = tab.frame_locator("iframe[name=__privateStripeChallengeFrame]")
        challenge.get_by_role("button", name="Complete").click()
        result = result_of(tab)
        assert result["setupIntent"]["status"] == "succeeded"
        si = client.v1.setup_intents.retrieve(intent.id)
        pm = client.v1.payment_methods.retrieve(si.payment_method)
        assert pm.customer == si.customer and pm.card.last4 == "3155"
        assert "/_stripe/three_d_secure/" in json.dumps(
            client.v1.events.list(params={"type": "setup_intent.requires_action"})
            .data[0]
            .data.object["next_action"]
            .to_dict()
        )
        assert "setup_intent.succeeded" in event_types(client)
    finally:
        context.close()
        stop()


def test_card_element_payment_authentication_fails(
    page: Any, client: stripe.StripeClient, shop: str
) -> None:
    intent = open_shop(page, shop, client, flow="card-payment")
    type_in_element(page, "4000002500003155")
    page.get_by_role("button", name="Save").click()
    challenge = page.frame_locator("iframe[name=__privateStripeChallengeFrame]")
    assert "¥2,000" in challenge.locator("main").inner_text()
    challenge.get_by_role("button", name="Fail").click()
    error = result_of(page)["error"]
    assert error["code"] == "payment_intent_authentication_failure"
    assert error["payment_intent"]["status"] == "requires_payment_method"
    pi = client.v1.payment_intents.retrieve(intent.id)
    assert pi.status == "requires_payment_method"
    assert pi.last_payment_error.code == "payment_intent_authentication_failure"
    assert event_types(client)[-1] == "payment_intent.payment_failed"


def test_handle_next_action_after_server_confirmation(
    page: Any, client: stripe.StripeClient, shop: str
) -> None:
    intent = open_shop(page, shop, client, flow="next-action")
    assert intent.status == "requires_action" and intent.next_action.type == "use_stripe_sdk"
    page.get_by_role("button", name="Save").click()
    challenge = page.frame_locator("iframe[name=__privateStripeChallengeFrame]")
    challenge.get_by_role("button", name="Complete").click()
    assert result_of(page)["paymentIntent"]["status"] == "succeeded"
    assert client.v1.payment_intents.retrieve(intent.id).status == "succeeded"
    assert event_types(client)[-1] == "payment_intent.succeeded"


def test_card_setup_decline_is_reported(page: Any, client: stripe.StripeClient, shop: str) -> None:
    intent = open_shop(page, shop, client, flow="card-setup")
    type_in_element(page, "4000000000009995")
    page.get_by_role("button", name="Save").click()
    error = result_of(page)["error"]
    assert (error["type"], error["code"], error["decline_code"]) == (
        "card_error",
        "card_declined",
        "insufficient_funds",
    )
    assert error["message"] == "Your card has insufficient funds."
    assert error["setup_intent"]["id"] == intent.id
    assert "setup_intent.setup_failed" in event_types(client)


def test_deferred_setup_and_redirect_always(
    page: Any, client: stripe.StripeClient, shop: str
) -> None:
    intent = open_shop(page, shop, client, flow="deferred-setup")
    type_in_element(page, "4242424242424242")
    page.get_by_role("button", name="Save").click()
    assert result_of(page)["setupIntent"]["status"] == "succeeded"

    redirected = open_shop(page, shop, client, flow="setup-redirect")
    type_in_element(page, "5555555555554444")
    page.get_by_role("button", name="Save").click()
    page.wait_for_url(f"{shop}/done?**")
    query = page.url.split("?", 1)[1]
    assert f"setup_intent={redirected.id}" in query and "redirect_status=succeeded" in query
    assert f"setup_intent_client_secret={redirected.client_secret}" in query
    for seti in (intent, redirected):
        assert client.v1.setup_intents.retrieve(seti.id).status == "succeeded"
