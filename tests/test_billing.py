"""Customer billing through the portal's views and services, against the embedded sandbox."""
from __future__ import annotations

import re

import pytest

from portal.extensions import db
from portal.models import Account, Invoice, PaymentMethod, Subscription
from portal.services.catalog_sync import sync_catalog
from portal.services.checkout import CheckoutRefused, start_checkout
from portal.services.payment_methods import (
    PaymentMethodRefused,
    remove_card,
    set_default,
)
from portal.services.subscriptions import change_plan, proration_preview
from tests.factories import make_subscription
from tests.helpers import csrf_from, customer_with_card, price_id


@pytest.fixture
def catalog(app, stripe_api):
    """Push the catalog to the sandbox."""
    sync_catalog()


@pytest.fixture
def subscribed(app, stripe_api, catalog, make_user, deliver_webhooks):
    """Return a builder: a customer with a card and a live subscription on `lookup_key`."""

    def build(lookup_key: str = "pro_month", card: str = "pm_card_visa"):
        user = make_user()
        customer_with_card(stripe_api, user.account, card)
        stripe_api.v1.subscriptions.create(params={
            "customer": user.account.stripe_customer_id,
            "items": [{"price": price_id(stripe_api, lookup_key)}]})
        deliver_webhooks()
        db.session.expire_all()
        return user

    return build


def test_checkout_starts_a_subscription_session(app, stripe_api, catalog, make_user):
    user = make_user()
    with app.test_request_context("/"):
        url = start_checkout(user.account, "starter_month", "http://localhost/ok?s={CHECKOUT_SESSION_ID}",
                             "http://localhost/cancel")
    assert "/_stripe/c/pay/" in url
    session_id = url.rsplit("/", 1)[-1].split("#")[0]
    session = stripe_api.v1.checkout.sessions.retrieve(session_id)
    assert session.mode == "subscription"
    assert session.client_reference_id == str(user.account_id)
    assert session.customer == db.session.get(Account, user.account_id).stripe_customer_id
    assert session.allow_promotion_codes is True


def test_checkout_refuses_free_contact_and_unknown_plans(app, stripe_api, catalog, make_user):
    account = make_user().account
    for key in ("free_month", "enterprise_month", "nonexistent"):
        with pytest.raises(CheckoutRefused):
            start_checkout(account, key, "http://localhost/ok", "http://localhost/cancel")


def test_checkout_view_redirects_with_303(app, client, catalog, make_user, login):
    login(make_user())
    token = csrf_from(client, "/billing/plans")
    response = client.post("/billing/checkout", data={"csrf_token": token,
                                                      "lookup_key": "pro_year"})
    assert response.status_code == 303
    assert "/_stripe/c/pay/cs_test_" in response.headers["Location"]
    bad = client.post("/billing/checkout", data={"csrf_token": token, "lookup_key": "x y"})
    assert bad.status_code == 400


def test_customer_with_a_subscription_cannot_checkout_again(subscribed):
    user = subscribed()
    with pytest.raises(CheckoutRefused, match="already have a subscription"):
        start_checkout(user.account, "starter_month", "http://localhost/ok", "http://localhost/cancel")


def test_preview_equals_the_invoice_the_change_bills(app, stripe_api, subscribed, deliver_webhooks):
    user = subscribed("pro_month")
    with app.test_request_context("/"):
        preview = proration_preview(user.account, "pro_year")
        assert preview.amount_due > 0 and any(line["proration"] for line in preview.lines)
        subscription = change_plan(user.account, "pro_year", preview.proration_date)
    invoice = stripe_api.v1.invoices.retrieve(subscription.latest_invoice_id)
    assert invoice.amount_due == preview.amount_due
    assert sorted(line.amount for line in invoice.lines.data) == sorted(
        line["amount"] for line in preview.lines)
    deliver_webhooks()
    db.session.expire_all()
    row = db.session.scalar(db.select(Subscription))
    assert row.stripe_price_id == price_id(stripe_api, "pro_year")


def test_stale_preview_is_refused(app, subscribed):
    from portal.services.subscriptions import SubscriptionChangeRefused

    user = subscribed("pro_month")
    with pytest.raises(SubscriptionChangeRefused, match="expired"):
        change_plan(user.account, "pro_year", 1_000_000_000)


def test_cancel_and_resume_through_the_dashboard(app, client, stripe_api, subscribed, login):
    user = subscribed("starter_month")
    login(user)
    token = csrf_from(client, "/billing/")
    response = client.post("/billing/subscription/cancel", data={
        "csrf_token": token, "feedback": "unused", "comment": "Quiet season"})
    assert response.status_code == 303
    row = db.session.scalar(db.select(Subscription))
    remote = stripe_api.v1.subscriptions.retrieve(row.stripe_subscription_id)
    assert remote.cancel_at_period_end and remote.cancellation_details.comment == "Quiet season"
    assert row.cancel_at_period_end and row.cancellation_feedback == "unused"
    page = client.get("/billing/").get_data(as_text=True)
    assert "Resume subscription" in page
    client.post("/billing/subscription/resume", data={"csrf_token": token})
    db.session.expire_all()
    assert db.session.scalar(db.select(Subscription.cancel_at_period_end)) is False
    bad = client.post("/billing/subscription/cancel", data={
        "csrf_token": token, "feedback": "not-a-reason"})
    assert bad.status_code == 303


def test_cancel_asks_for_confirmation_saying_when_access_ends(client, make_user, login):
    from datetime import UTC, datetime

    user = make_user()
    ends = datetime(2026, 1, 31, 9, 0, tzinfo=UTC)
    subscription = make_subscription(user.account, current_period_end=ends)
    login(user)
    dashboard = client.get("/billing/").get_data(as_text=True)
    assert 'href="/billing/subscription/cancel"' in dashboard
    assert "Cancel at period end" not in dashboard  # nothing is cancelled from the dashboard
    response = client.get("/billing/subscription/cancel")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "<strong data-access-ends>31 Jan 2026</strong>" in page
    assert "you will not be charged again" in page and "Free plan" in page
    assert "resume" in page and "Keep my subscription" in page
    form = re.search(r'<form method="post" action="/billing/subscription/cancel">.*?</form>',
                     page, re.S).group(0)
    assert 'name="csrf_token"' in form and "Cancel at period end" in form
    assert 'name="feedback"' in form and 'name="comment"' in form

    subscription.status = "trialing"
    db.session.commit()
    assert "the end of your trial" in client.get("/billing/subscription/cancel").get_data(
        as_text=True)
    subscription.cancel_at_period_end = True
    db.session.commit()
    again = client.get("/billing/subscription/cancel")
    assert again.status_code == 302 and again.headers["Location"] == "/billing/"


def test_dashboard_shows_plan_next_invoice_and_invoices(client, subscribed, login):
    login(subscribed("pro_month"))
    page = client.get("/billing/").get_data(as_text=True)
    assert "Pro" in page and "$49.00 / month" in page
    assert re.search(r"data-next-invoice>\$49\.00 on \d\d \w{3} \d{4}", page)
    assert 'id="invoices"' in page and "paid" in page


def test_last_card_stays_while_subscribed_and_default_moves(app, stripe_api, subscribed,
                                                            deliver_webhooks):
    user = subscribed("starter_month")
    account = db.session.get(Account, user.account_id)
    only = db.session.scalar(db.select(PaymentMethod))
    with pytest.raises(PaymentMethodRefused, match="only card"):
        remove_card(account, only.stripe_payment_method_id)
    second = stripe_api.v1.payment_methods.attach("pm_card_mastercard",
                                              params={"customer": account.stripe_customer_id})
    deliver_webhooks()
    set_default(account, second.id)
    remote = stripe_api.v1.customers.retrieve(account.stripe_customer_id)
    assert remote.invoice_settings.default_payment_method == second.id
    subscription = db.session.scalar(db.select(Subscription))
    assert stripe_api.v1.subscriptions.retrieve(
        subscription.stripe_subscription_id).default_payment_method == second.id
    remove_card(account, second.id)
    assert stripe_api.v1.customers.retrieve(
        account.stripe_customer_id).invoice_settings.default_payment_method == \
        only.stripe_payment_method_id
    assert [card.stripe_payment_method_id for card in db.session.scalars(
        db.select(PaymentMethod))] == [only.stripe_payment_method_id]


def test_urls_naming_another_accounts_objects_are_refused(client, subscribed, make_user, login):
    owner = subscribed("starter_month")
    card = db.session.scalar(db.select(PaymentMethod))
    invoice = db.session.scalar(db.select(Invoice))
    login(make_user())
    token = csrf_from(client, "/billing/")
    for url in (f"/billing/payment-methods/{card.stripe_payment_method_id}/default",
                f"/billing/payment-methods/{card.stripe_payment_method_id}/remove",
                f"/billing/invoices/{invoice.stripe_invoice_id}/pay"):
        response = client.post(url, data={"csrf_token": token}, follow_redirects=True)
        assert "not on this account" in response.get_data(as_text=True), url
    db.session.expire_all()
    assert db.session.get(Account, owner.account_id).default_payment_method_id == \
        card.stripe_payment_method_id


def test_past_due_banner_and_pay_now(app, client, stripe_api, subscribed, login, deliver_webhooks):
    user = subscribed("starter_month", card="pm_card_chargeCustomerFail")
    subscription = db.session.scalar(db.select(Subscription))
    assert subscription.status == "incomplete"
    login(user)
    page = client.get("/billing/").get_data(as_text=True)
    assert "waiting for its first payment" in page and "Pay now" in page
    account = db.session.get(Account, user.account_id)
    good = stripe_api.v1.payment_methods.attach("pm_card_visa",
                                            params={"customer": account.stripe_customer_id})
    deliver_webhooks()
    set_default(account, good.id)
    invoice = db.session.scalar(db.select(Invoice).where(Invoice.status == "open"))
    token = csrf_from(client, "/billing/")
    response = client.post(f"/billing/invoices/{invoice.stripe_invoice_id}/pay",
                           data={"csrf_token": token})
    assert response.status_code == 303
    deliver_webhooks()
    db.session.expire_all()
    assert db.session.get(Invoice, invoice.id).status == "paid"
    assert db.session.scalar(db.select(Subscription.status)) == "active"


def test_pay_now_with_a_card_needing_authentication_hands_over_to_stripe_js(
        app, client, stripe_api, subscribed, login):
    user = subscribed("starter_month", card="pm_card_authenticationRequired")
    login(user)
    invoice = db.session.scalar(db.select(Invoice).where(Invoice.status == "open"))
    response = client.post(f"/billing/invoices/{invoice.stripe_invoice_id}/pay",
                           data={"csrf_token": csrf_from(client, "/billing/")})
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'data-client-secret="pi_' in page and "/_stripe/v3/" in page


def test_get_pages_make_no_stripe_calls(app, client, subscribed, login, make_user):
    from portal.models import Role

    user = subscribed("pro_month")
    http = app.extensions["stripe_http_client"]
    login(user)
    pages = ["/billing/", "/billing/plans", "/billing/plans?interval=year",
             "/billing/payment-methods", "/billing/checkout/success?session_id=cs_x",
             "/billing/checkout/status", "/health"]
    before = http.requests_sent
    for path in pages:
        assert client.get(path).status_code == 200, path
    assert http.requests_sent == before
    client.post("/auth/logout", data={"csrf_token": csrf_from(client, "/billing/")})
    login(make_user(Role.ADMIN))
    for path in ["/admin/", f"/admin/accounts/{user.account_id}", "/admin/audit",
                 "/admin/events", "/admin/staff"]:
        assert client.get(path).status_code == 200, path
    assert http.requests_sent == before
    # The counter does move when a page does call Stripe.
    client.post("/auth/logout", data={"csrf_token": csrf_from(client, "/admin/")})
    login(user)
    client.post("/billing/subscription/preview", data={
        "csrf_token": csrf_from(client, "/billing/plans"), "lookup_key": "pro_year"})
    assert http.requests_sent > before


def test_stripe_js_and_csp_follow_the_stripe_mode(app, client, database_url, make_user, login):
    from portal import create_app

    login(make_user())
    sandbox_page = client.get("/billing/payment-methods")
    csp = sandbox_page.headers["Content-Security-Policy"]
    assert "stripe.com" not in csp
    assert '<script src="/_stripe/v3/"' in sandbox_page.get_data(as_text=True)

    live = create_app({
        "SQLALCHEMY_DATABASE_URI": database_url, "TESTING": True, "PORTAL_ENV": "testing",
        "SECRET_KEY": "test-secret-key", "STRIPE_SECRET_KEY": "sk_test_real",
        "STRIPE_PUBLISHABLE_KEY": "pk_test_real", "STRIPE_WEBHOOK_SECRET": "whsec_real"})
    live_client = live.test_client()
    user = make_user()
    token = csrf_from(live_client, "/auth/login")
    live_client.post("/auth/login", data={"email": user.email, "password": "correct horse battery",
                                          "csrf_token": token})
    page = live_client.get("/billing/payment-methods")
    body = page.get_data(as_text=True)
    assert '<script src="https://js.stripe.com/v3/"' in body and 'pk_test_real' in body
    directives = dict(part.strip().split(" ", 1)
                      for part in page.headers["Content-Security-Policy"].split(";"))
    assert directives["script-src"] == "'self' https://js.stripe.com https://*.js.stripe.com"
    assert directives["frame-src"] == ("'self' https://js.stripe.com https://*.js.stripe.com "
                                       "https://hooks.stripe.com")
    assert directives["connect-src"] == "'self' https://api.stripe.com"
    assert directives["form-action"] == "'self' https://checkout.stripe.com"
    assert directives["default-src"] == "'self'"
    with live.app_context():
        db.engine.dispose()


def test_staff_see_an_accounts_subscription_and_invoices(client, subscribed, make_user, login):
    from portal.models import Role

    customer = subscribed("pro_month")
    login(make_user(Role.AUDITOR))
    page = client.get(f"/admin/accounts/{customer.account_id}").get_data(as_text=True)
    subscription = db.session.scalar(db.select(Subscription))
    assert subscription.stripe_subscription_id in page
    assert "$49.00 / month" in page and "active" in page
    assert page.count("status-paid") >= 1
