"""The sandbox's browser side in real headless Chromium: hosted Checkout, 3-D Secure, Elements.

Each test drives the pages a customer sees, then checks the resulting Stripe objects and the
recorded events through the official SDK. A small "merchant" app stands in for the site that
embeds Stripe.js: on its own origin for most tests, and with the sandbox mounted under
``/_stripe`` on the same origin (werkzeug's DispatcherMiddleware) for the prefix test.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import stripe
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from portal.sandbox import create_sandbox_app
from tests.factories import skip_or_fail

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
PUBLISHABLE_KEY = "pk_test_sandbox_browser"
SECRET_KEY = "sk_test_sandbox_browser"
AUTH_FAILED = "We are unable to authenticate your payment method."

MERCHANT_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Test shop</title></head><body>
<form id="form"><div id="element"></div><button id="pay" type="submit">Save</button></form>
<pre id="result"></pre><p id="events"></p>
<script src="{script}"></script>
<script>
var q = new URLSearchParams(location.search);
var stripe = Stripe(q.get('pk'));
var secret = q.get('secret');
var card = q.get('flow') === 'card-payment';
var elements = stripe.elements({{clientSecret: secret}});
var element = elements.create(card ? 'card' : 'payment');
var seen = [];
function note(name) {{
  if (seen.indexOf(name) < 0) {{ seen.push(name); }}
  document.getElementById('events').textContent = seen.join(',');
}}
element.on('ready', function () {{ note('ready'); }});
element.on('change', function (e) {{ if (e.complete) {{ note('complete'); }} }});
element.mount('#element');
document.getElementById('form').addEventListener('submit', function (ev) {{
  ev.preventDefault();
  var done = card
    ? stripe.confirmCardPayment(secret, {{payment_method: {{card: element,
        billing_details: {{name: 'Jenny Rosen'}}}}}})
    : stripe.confirmSetup({{elements: elements, redirect: 'if_required',
        confirmParams: {{return_url: location.origin + '/done'}}}});
  done.then(function (r) {{ document.getElementById('result').textContent = JSON.stringify(r); }});
}});
</script></body></html>"""


def merchant_app(script: str) -> Callable:
    """Return a WSGI app serving the test shop's pages, loading Stripe.js from ``script``."""

    def app(environ: dict, start_response: Callable) -> Any:
        request = Request(environ)
        if request.path == "/shop":
            body = MERCHANT_PAGE.format(script=script)
        else:
            body = f"<!doctype html><title>{request.path}</title><h1>{request.path}</h1>"
        return Response(body, mimetype="text/html")(environ, start_response)

    return app


def serve(app: Callable) -> tuple[str, Callable[[], None]]:
    """Serve a WSGI app on an ephemeral port; return its URL and a stop function."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    return f"http://127.0.0.1:{server.server_port}", stop


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """Return headless Debian Chromium driven by Playwright, or skip when it is missing."""
    if not os.path.exists(CHROMIUM):
        skip_or_fail(
            "Chromium is not installed: run `apt-get install chromium` to enable browser tests",
            "REQUIRE_BROWSER",
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        skip_or_fail("Playwright is missing: pip install -e '.[test]'", "REQUIRE_BROWSER")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium: Any) -> Iterator[Any]:
    """Return a fresh browser page with short timeouts."""
    context = chromium.new_context()
    tab = context.new_page()
    tab.set_default_timeout(10_000)
    yield tab
    context.close()


@pytest.fixture
def shop(sandbox: Any) -> Iterator[str]:
    """Run the test shop on its own origin, loading Stripe.js from the sandbox."""
    url, stop = serve(merchant_app(f"{sandbox.url}/v3/"))
    yield url
    stop()


@pytest.fixture
def client(sandbox: Any) -> stripe.StripeClient:
    """Return the SDK client of the sandbox."""
    return sandbox.client(SECRET_KEY)


def event_types(client: stripe.StripeClient) -> list[str]:
    """Return the types of all recorded events, oldest first."""
    events = client.v1.events.list(params={"limit": 100})
    return [e.type for e in reversed(events.data)]


def monthly_price(
    client: stripe.StripeClient, amount: int = 1500, currency: str = "usd", recurring: bool = True
) -> Any:
    """Create a product and a price for it."""
    product = client.v1.products.create(params={"name": "Team plan"})
    params: dict[str, Any] = {"product": product.id, "currency": currency, "unit_amount": amount}
    if recurring:
        params["recurring"] = {"interval": "month"}
    return client.v1.prices.create(params=params)


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


def open_shop(page: Any, shop: str, client: stripe.StripeClient, flow: str = "setup") -> Any:
    """Create the intent for a flow, open the shop page and wait for the Element to be ready."""
    customer = client.v1.customers.create(params={"email": "elements@example.com"})
    if flow == "setup":
        intent = client.v1.setup_intents.create(params={"customer": customer.id})
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
    context = chromium.new_context()
    try:
        client = stripe.StripeClient(
            SECRET_KEY, base_addresses={"api": f"{url}/_stripe"}, max_network_retries=0
        )
        tab = context.new_page()
        tab.set_default_timeout(10_000)
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
