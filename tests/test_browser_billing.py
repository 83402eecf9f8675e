"""Customers buy, change, cancel and resume plans and manage cards, in headless Chromium,
against the portal started as README says (embedded sandbox, webhooks on)."""
from __future__ import annotations

import json
import re

import pytest
import stripe as stripe_sdk

from tests.helpers import sign_in

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def api(portal):
    """Return a StripeClient talking to the live portal's sandbox over HTTP, with its key."""
    keys = json.loads((portal["instance"] / "sandbox-keys.json").read_text())
    return stripe_sdk.StripeClient(keys["secret"],
                                   base_addresses={"api": portal["url"] + "/_stripe"},
                                   max_network_retries=0)


def register(page, base: str, email: str) -> None:
    """Create an account through the registration form, then sign in as its owner."""
    page.goto(f"{base}/auth/register")
    page.get_by_label("Company or account name").fill(f"{email.split('@')[0]} Ltd")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password", exact=True).fill("a long browser password")
    page.get_by_label("Repeat password").fill("a long browser password")
    page.get_by_role("button", name="Create account").click()
    # The same answer as for a taken email: a message, then sign in with the chosen password.
    page.wait_for_url(f"{base}/auth/login")
    sign_in(page, base, email, "a long browser password")
    page.wait_for_url(f"{base}/billing/")


def pay_on_checkout(page, card: str) -> None:
    """Fill the hosted Checkout page with a test card and pay."""
    page.get_by_label("Card number").fill(card)
    page.get_by_label("Expiration (MM / YY)").fill("12 / 34")
    page.get_by_label("CVC").fill("123")
    page.get_by_label("Cardholder name").fill("Browser Tester")
    page.locator("#submit").click()


def buy(page, base: str, plan: str, interval: str) -> None:
    """Choose a plan on the plans page and complete Checkout with 4242 4242 4242 4242."""
    page.goto(f"{base}/billing/plans?interval={interval}")
    page.locator(f"[data-plan={plan}] button").click()
    page.wait_for_url(re.compile(r".*/_stripe/c/pay/.*"))
    pay_on_checkout(page, "4242 4242 4242 4242")
    page.wait_for_url(re.compile(r".*/billing/checkout/success.*"))
    page.locator("#activation[data-state=active]").wait_for(timeout=15_000)


def add_card_with_3d_secure(page, base: str, number: str) -> None:
    """Save a card through the Elements form as the default, completing 3-D Secure."""
    page.goto(f"{base}/billing/payment-methods")
    frame = page.frame_locator("#payment-element iframe")
    frame.get_by_label("Card number").fill(number)
    frame.get_by_label(re.compile("Expir")).fill("12 / 34")
    frame.get_by_label("Security code").fill("123")
    page.get_by_label("Make this my default card").check()
    page.get_by_role("button", name="Save card").click()
    challenge = page.frame_locator("[aria-label='3D Secure authentication'] iframe")
    challenge.get_by_role("button", name="Complete").click()
    page.get_by_text(f"Visa ending in {number[-4:]} was added.").wait_for(timeout=15_000)


def customer_of(api, email: str):
    """Return the Stripe customer the portal made for an email."""
    found = api.v1.customers.search(params={"query": f"email:'{email}'"}).data
    assert len(found) == 1
    return found[0]


def test_new_user_buys_pro_yearly_on_hosted_checkout(portal, page, api):
    base = portal["url"]
    register(page, base, "yearly@example.com")
    buy(page, base, "pro", "year")
    assert "Your subscription is active" in page.locator("#activation").inner_text()
    page.get_by_role("link", name="Go to billing").click()
    plan = page.locator("#plan").inner_text()
    assert "Pro" in plan and "$490.00 / year" in plan and "active" in plan
    customer = customer_of(api, "yearly@example.com")
    subscriptions = api.v1.subscriptions.list(params={"customer": customer.id}).data
    assert [s.status for s in subscriptions] == ["active"]
    assert subscriptions[0]["items"].data[0].price.lookup_key == "pro_year"
    invoices = api.v1.invoices.list(params={"customer": customer.id}).data
    assert [(i.status, i.amount_paid) for i in invoices] == [("paid", 49000)]
    events = {event.type for event in api.v1.events.list(params={"limit": 100}).data}
    assert {"checkout.session.completed", "customer.subscription.created",
            "invoice.paid"} <= events


def test_upgrade_card_cancel_and_resume(portal, page, api):
    base = portal["url"]
    register(page, base, "journey@example.com")
    buy(page, base, "pro", "month")
    customer = customer_of(api, "journey@example.com")

    # Upgrade to yearly: the preview's amount due equals the invoice the change bills.
    page.goto(f"{base}/billing/plans?interval=year")
    page.locator("[data-plan=pro] button").click()
    page.wait_for_url(f"{base}/billing/subscription/preview")
    previewed = int(page.locator("[data-amount-due]").get_attribute("data-amount-due"))
    assert previewed > 0
    page.get_by_role("button", name=re.compile("Confirm and pay")).click()
    page.wait_for_url(f"{base}/billing/")
    page.get_by_text("Your plan has changed.").wait_for()
    subscription = api.v1.subscriptions.list(params={"customer": customer.id}).data[0]
    latest = api.v1.invoices.retrieve(subscription.latest_invoice)
    assert latest.amount_due == previewed and latest.status == "paid"
    assert "$490.00 / year" in page.locator("#plan").inner_text()

    # A 3-D Secure card through Elements, made the default.
    add_card_with_3d_secure(page, base, "4000 0025 0000 3155")
    row = page.locator("#cards tr", has_text="3155")
    assert "Default" in row.inner_text()
    customer = api.v1.customers.retrieve(customer.id)
    default = customer.invoice_settings.default_payment_method
    assert api.v1.payment_methods.retrieve(default).card.last4 == "3155"
    subscription = api.v1.subscriptions.retrieve(subscription.id)
    assert subscription.default_payment_method == default

    # Cancel at period end with a reason, then resume.
    page.goto(f"{base}/billing/")
    page.get_by_text("Cancel subscription").click()
    page.get_by_label("Why are you leaving? (optional)").select_option("too_expensive")
    page.get_by_role("button", name="Cancel at period end").click()
    page.get_by_text("You can resume it until then.").wait_for()
    remote = api.v1.subscriptions.retrieve(subscription.id)
    assert remote.cancel_at_period_end is True
    assert remote.cancellation_details.feedback == "too_expensive"
    page.get_by_role("button", name="Resume subscription").click()
    page.get_by_text("Your subscription will renew as before.").wait_for()
    assert api.v1.subscriptions.retrieve(subscription.id).cancel_at_period_end is False


def test_pay_now_finishes_3d_secure_for_an_upgrade_the_bank_held(portal, page, api):
    base = portal["url"]
    register(page, base, "held@example.com")
    buy(page, base, "pro", "month")
    # A card whose bank asks for authentication on every payment becomes the default.
    add_card_with_3d_secure(page, base, "4000 0027 6000 3184")

    # The upgrade's payment needs the customer: the bank holds it.
    page.goto(f"{base}/billing/plans?interval=year")
    page.locator("[data-plan=pro] button").click()
    page.get_by_role("button", name=re.compile("Confirm and pay")).click()
    page.wait_for_url(f"{base}/billing/")
    banner = page.get_by_role("alert")
    banner.wait_for()
    assert "Your last payment failed." in banner.inner_text()

    page.get_by_role("button", name="Pay now").click()
    page.wait_for_url(f"{base}/billing/invoices/*/pay")
    challenge = page.frame_locator("[aria-label='3D Secure authentication'] iframe")
    challenge.get_by_role("button", name="Complete").click()
    page.wait_for_url(f"{base}/billing/")
    customer = customer_of(api, "held@example.com")
    invoices = api.v1.invoices.list(params={"customer": customer.id}).data
    assert [invoice.status for invoice in invoices] == ["paid", "paid"]
    subscription = api.v1.subscriptions.list(params={"customer": customer.id}).data[0]
    assert subscription.status == "active"


def test_card_errors_are_shown_once(portal, page):
    base = portal["url"]
    register(page, base, "typo@example.com")
    page.goto(f"{base}/billing/payment-methods")
    frame = page.frame_locator("#payment-element iframe")
    portal_errors = page.locator("#card-errors")
    submit = page.get_by_role("button", name="Save card")

    # A mistyped number: the Payment Element says so beside the field, and only there.
    frame.get_by_label("Card number").fill("4242 4242 4242 4241")
    frame.get_by_label(re.compile("Expir")).fill("12 / 34")
    frame.get_by_label("Security code").fill("123")
    frame.get_by_text("Your card number is invalid.").wait_for()
    submit.click()
    page.wait_for_function("!document.getElementById('card-submit').disabled")
    assert frame.get_by_text("Your card number is invalid.").count() == 1
    assert portal_errors.inner_text() == ""

    # A decline comes from the bank, which the Element does not show: the page says it once.
    frame.get_by_label("Card number").fill("4000 0000 0000 9995")
    submit.click()
    page.get_by_text("Your card has insufficient funds.").wait_for(timeout=15_000)
    assert portal_errors.inner_text() == "Your card has insufficient funds."
    assert frame.get_by_text("insufficient funds").count() == 0
