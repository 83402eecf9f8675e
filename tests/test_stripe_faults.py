"""Every money-moving call the portal makes, under each fault the sandbox injects.

For each action (Checkout, plan change, Pay now, card setup, refund) and each fault (500
api_error, 429 rate_limit, latency, hang, dropped connection, lost response) the fault
strikes more often than the SDK retries, so the customer sees it: a clear message, never a
500; the customer (or admin) then submits again and Stripe holds exactly one effect,
because every retry carries the idempotency key derived from the portal's own record.
Stripe's rules followed: https://docs.stripe.com/error-handling (network errors, 500s,
429s), https://docs.stripe.com/api/idempotent_requests (a key replays its first result),
https://docs.stripe.com/rate-limits.
"""
from __future__ import annotations

import re
import time

import pytest

from portal.extensions import db
from portal.models import Account, Charge, Invoice, RefundRequest, Role
from portal.services.catalog_sync import sync_catalog
from portal.services.payment_methods import set_default
from tests.factories import DEFAULT_PASSWORD
from tests.helpers import csrf_from, customer_with_card, price_id
from tests.test_refunds import confirm, review

FAULTS = ("api_error", "rate_limit", "latency", "hang", "drop", "lose_response")
# Read timeout short, so a hang costs the tests half a second per attempt.
pytestmark = pytest.mark.app_settings(SANDBOX_FAULT_INJECTION=True, STRIPE_READ_TIMEOUT=0.5,
                                      STRIPE_MAX_RETRIES=2)
# Three strikes outlast the SDK's two retries: the person clicking sees the failure.
STRIKES = 3
MESSAGES = {
    "api_error": "did not confirm whether that went through",
    "rate_limit": "too busy to take that right now",
    "hang": "did not confirm whether that went through",
    "drop": "did not confirm whether that went through",
    "lose_response": "did not confirm whether that went through",
}


def inject(stripe_api, method: str, path: str, kind: str, count: int = STRIKES) -> None:
    """Ask the embedded sandbox to fail the next `count` matching requests."""
    stripe_api.raw_request("post", "/v1/sandbox/faults", method=method, path=path, kind=kind,
                           count=count, latency_ms=100)


def clear_faults(stripe_api) -> None:
    stripe_api.raw_request("delete", "/v1/sandbox/faults")


def flashed(client, response) -> str:
    """Return the page a redirect leads to (its flashed message included)."""
    assert response.status_code in (302, 303), response.status_code
    return client.get(response.headers["Location"]).get_data(as_text=True)


@pytest.fixture
def catalog(app, stripe_api):
    sync_catalog()


@pytest.fixture
def subscribed(app, stripe_api, catalog, make_user, deliver_webhooks):
    """Return a builder: a customer with a card and a live subscription on `lookup_key`."""

    def build(lookup_key: str = "starter_month", card: str = "pm_card_visa"):
        user = make_user()
        customer_with_card(stripe_api, user.account, card)
        stripe_api.v1.subscriptions.create(params={
            "customer": user.account.stripe_customer_id,
            "items": [{"price": price_id(stripe_api, lookup_key)}]})
        deliver_webhooks()
        db.session.expire_all()
        return user

    return build


def away_from_a_minute_boundary() -> None:
    """Checkout's key names the minute (a double click within it is one session)."""
    if time.time() % 60 > 50:
        time.sleep(61 - time.time() % 60)


@pytest.mark.parametrize("fault", FAULTS)
def test_checkout_under_fault(app, client, stripe_api, catalog, make_user, login, fault):
    user = make_user()
    login(user)
    away_from_a_minute_boundary()
    token = csrf_from(client, "/billing/plans")
    form = {"csrf_token": token, "lookup_key": "pro_month"}
    client.post("/billing/checkout", data=form)  # creates the Stripe customer first
    inject(stripe_api, "POST", "/v1/checkout/sessions", fault)
    struck = client.post("/billing/checkout", data=form)
    if fault == "latency":
        assert struck.status_code == 303 and "/_stripe/" in struck.headers["Location"]
    else:
        assert MESSAGES[fault] in flashed(client, struck)
    clear_faults(stripe_api)
    again = client.post("/billing/checkout", data=form)
    assert again.status_code == 303 and "/_stripe/" in again.headers["Location"]
    account = db.session.get(Account, user.account_id)
    sessions = stripe_api.v1.checkout.sessions.list(
        params={"customer": account.stripe_customer_id}).data
    assert len(sessions) == 1


@pytest.mark.parametrize("fault", FAULTS)
def test_plan_change_under_fault(app, client, stripe_api, subscribed, login, fault):
    user = subscribed("starter_month")
    login(user)
    token = csrf_from(client, "/billing/plans")
    page = client.post("/billing/subscription/preview", data={
        "csrf_token": token, "lookup_key": "pro_month"}).get_data(as_text=True)
    proration_date = re.search(r'name="proration_date" value="(\d+)"', page).group(1)
    form = {"csrf_token": token, "lookup_key": "pro_month", "proration_date": proration_date}
    inject(stripe_api, "POST", "/v1/subscriptions/*", fault)
    struck = client.post("/billing/subscription/change", data=form)
    if fault != "latency":
        assert MESSAGES[fault] in flashed(client, struck)
    clear_faults(stripe_api)
    # The customer confirms again (or double-clicks): the same change, under the same key.
    for _ in range(2):
        assert client.post("/billing/subscription/change", data=form).status_code == 303
    account = db.session.get(Account, user.account_id)
    invoices = stripe_api.v1.invoices.list(params={"customer": account.stripe_customer_id}).data
    assert [i.billing_reason for i in invoices] == ["subscription_update", "subscription_create"]
    charges = stripe_api.v1.charges.list(params={"customer": account.stripe_customer_id}).data
    assert len(charges) == 2


@pytest.mark.parametrize("fault", FAULTS)
def test_pay_now_under_fault(app, client, stripe_api, subscribed, login, deliver_webhooks,
                             fault):
    user = subscribed("starter_month", card="pm_card_chargeCustomerFail")
    account = db.session.get(Account, user.account_id)
    good = stripe_api.v1.payment_methods.attach(
        "pm_card_visa", params={"customer": account.stripe_customer_id})
    deliver_webhooks()
    set_default(account, good.id)
    login(user)
    invoice = db.session.scalar(db.select(Invoice).where(Invoice.status == "open"))
    token = csrf_from(client, "/billing/")
    url = f"/billing/invoices/{invoice.stripe_invoice_id}/pay"
    inject(stripe_api, "POST", "/v1/invoices/*/pay", fault)
    struck = client.post(url, data={"csrf_token": token})
    if fault != "latency":
        assert MESSAGES[fault] in flashed(client, struck)
    clear_faults(stripe_api)
    for _ in range(2):  # again, and a double click
        assert client.post(url, data={"csrf_token": token}).status_code == 303
    paid = [c for c in stripe_api.v1.charges.list(
        params={"customer": account.stripe_customer_id}).data if c.paid]
    assert len(paid) == 1
    assert stripe_api.v1.invoices.retrieve(invoice.stripe_invoice_id).status == "paid"


@pytest.mark.parametrize("fault", FAULTS)
def test_card_setup_under_fault(app, client, stripe_api, subscribed, login, fault):
    user = subscribed("starter_month")
    login(user)
    token = csrf_from(client, "/billing/payment-methods")
    page = client.get("/billing/payment-methods").get_data(as_text=True)
    body = {"attempt": re.search(r'data-setup-attempt="([^"]+)"', page).group(1)}
    headers = {"X-CSRFToken": token}
    inject(stripe_api, "POST", "/v1/setup_intents", fault)
    struck = client.post("/billing/payment-methods/setup-intent", headers=headers, json=body)
    if fault != "latency":
        assert struck.status_code == 503
        assert MESSAGES[fault] in struck.get_json()["error"]
    clear_faults(stripe_api)
    # Pressed again on the same page, twice: the same SetupIntent each time.
    secrets = [client.post("/billing/payment-methods/setup-intent", headers=headers,
                           json=body).get_json()["client_secret"] for _ in range(2)]
    assert secrets[0] == secrets[1]
    intent_id = secrets[0].split("_secret_")[0]
    customer_id = db.session.get(Account, user.account_id).stripe_customer_id
    assert [i.id for i in stripe_api.v1.setup_intents.list(
        params={"customer": customer_id}).data] == [intent_id]
    stripe_api.v1.setup_intents.confirm(intent_id, params={"payment_method": "pm_card_mastercard"})
    # Recording the card and making it the default: faults on the customer update.
    inject(stripe_api, "POST", "/v1/customers/*", fault)
    confirm = client.post("/billing/payment-methods/confirm", headers=headers,
                          json={"setup_intent": intent_id, "make_default": True})
    if fault != "latency":
        assert confirm.status_code == 503
        assert MESSAGES[fault] in confirm.get_json()["error"]
    clear_faults(stripe_api)
    for _ in range(2):
        done = client.post("/billing/payment-methods/confirm", headers=headers,
                           json={"setup_intent": intent_id, "make_default": True})
        assert done.status_code == 200
    account = db.session.get(Account, user.account_id)
    cards = stripe_api.v1.payment_methods.list(
        params={"customer": account.stripe_customer_id}).data
    assert len(cards) == 2
    customer = stripe_api.v1.customers.retrieve(account.stripe_customer_id)
    assert customer.invoice_settings.default_payment_method == done.get_json()["payment_method"]



@pytest.mark.parametrize("fault", FAULTS)
def test_refund_under_fault(app, client, stripe_api, make_user, login, deliver_webhooks, fault):
    account = make_user().account
    pm_id = customer_with_card(stripe_api, account, "pm_card_visa")
    intent = stripe_api.v1.payment_intents.create(params={
        "amount": 5000, "currency": "usd", "customer": account.stripe_customer_id,
        "payment_method": pm_id, "confirm": True, "off_session": True})
    db.session.commit()
    deliver_webhooks()
    charge = db.session.scalar(
        db.select(Charge).where(Charge.stripe_charge_id == intent.latest_charge))
    login(make_user(Role.ADMIN))
    page = review(client, charge, "10.00")
    inject(stripe_api, "POST", "/v1/refunds", fault)
    struck = confirm(client, charge, page, 1000, password=DEFAULT_PASSWORD)
    if fault == "latency":
        assert struck.status_code == 303
    else:
        # The record stays "sending": sending it again replays its key.
        assert struck.status_code == 409
        assert "cannot be refunded twice" in struck.get_data(as_text=True)
        (pending,) = list(db.session.scalars(db.select(RefundRequest)))
        assert pending.status == "sending"
    clear_faults(stripe_api)
    for _ in range(2):  # sent again, and a double click
        assert confirm(client, charge, page, 1000, password=DEFAULT_PASSWORD).status_code == 303
    db.session.expire_all()
    records = list(db.session.scalars(db.select(RefundRequest)))
    at_stripe = stripe_api.v1.refunds.list(params={"charge": charge.stripe_charge_id}).data
    assert len(at_stripe) == 1
    assert [r.stripe_refund_id for r in records if r.stripe_refund_id] == [at_stripe[0].id]
    assert all(r.status != "sending" for r in records)


def test_customer_pages_render_from_the_mirror_while_stripe_fails(
        app, client, stripe_api, subscribed, login):
    user = subscribed("starter_month")
    login(user)
    inject(stripe_api, "*", "/v1/*", "api_error", count=1000)
    for path in ("/billing/", "/billing/plans", "/billing/invoices", "/billing/payment-methods",
                 "/billing/settings", "/billing/api-keys", "/billing/subscription/cancel"):
        response = client.get(path)
        assert response.status_code == 200, path
    listed = stripe_api.raw_request("get", "/v1/sandbox/faults")
    assert '"hits": 0' in listed.body or '"hits":0' in listed.body
