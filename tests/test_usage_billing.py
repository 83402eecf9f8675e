"""Subscriptions carry the metered overage prices of their plan: Checkout, plan changes, and the
one-off command for subscriptions that predate them; the mirror keeps every item."""
from __future__ import annotations

import re

import pytest

from portal.extensions import db
from portal.models import Price, SubscriptionItem
from portal.services.catalog_sync import sync_catalog
from portal.services.checkout import start_checkout
from portal.services.metered_items import attach_metered_prices
from portal.services.plan_changes import change_plan, proration_preview
from portal.services.subscriptions import live_subscription
from tests.usage_billing_support import HOUR, advance, now, on_clock, subscribe

TOKEN = re.compile(r'name="form_token" value="([^"]+)"')


@pytest.fixture
def catalog(app, stripe_api):
    sync_catalog()


def metered_lookup_keys(subscription) -> dict[str, str]:
    """Return the mirrored items of a subscription as {meter or 'plan': price lookup_key}."""
    rows = db.session.scalars(db.select(SubscriptionItem).where(
        SubscriptionItem.subscription_id == subscription.id))
    keys = {}
    for row in rows:
        price = db.session.scalar(db.select(Price).where(
            Price.stripe_price_id == row.stripe_price_id))
        keys[row.meter_key or "plan"] = price.lookup_key
    return keys


def stripe_lookup_keys(stripe_api, subscription_id: str) -> dict[str, str]:
    """Return Stripe's items of a subscription as {meter or 'plan': price lookup_key}."""
    items = stripe_api.v1.subscriptions.retrieve(subscription_id)["items"].data
    return {item.price.to_dict()["metadata"].get("meter_key", "plan"): item.price.lookup_key
            for item in items}


STARTER = {"plan": "starter_month", "api_calls": "starter_api_calls_month",
           "storage_gb": "starter_storage_gb_month", "seats": "starter_seats_month"}


def test_checkout_subscribes_to_the_plan_and_its_metered_prices(app, client, stripe_api,
                                                               catalog, make_user,
                                                               deliver_webhooks):
    user = make_user()
    with app.test_request_context("/"):
        url = start_checkout(user.account, "starter_month", "http://localhost/ok",
                             "http://localhost/cancel")
    session = stripe_api.v1.checkout.sessions.retrieve(url.rsplit("/", 1)[-1].split("#")[0])
    items = stripe_api.v1.checkout.sessions.line_items.list(session.id).data
    assert sorted(item.price.lookup_key for item in items) == sorted(STARTER.values())
    path = "/" + url.split("/", 3)[3]
    form_token = TOKEN.search(client.get(path).get_data(as_text=True)).group(1)
    paid = client.post(path, data={"form_token": form_token, "action": "pay",
                                   "number": "4242424242424242", "expiry": "12 / 34",
                                   "cvc": "123", "name": "Jenny Rosen"})
    assert paid.status_code in (302, 303)
    deliver_webhooks()
    db.session.expire_all()
    subscription = live_subscription(user.account)
    # The plan stays the licensed item whatever order Stripe lists the items in.
    assert subscription.stripe_price_id == db.session.scalar(db.select(Price.stripe_price_id).where(
        Price.lookup_key == "starter_month"))
    assert metered_lookup_keys(subscription) == STARTER
    assert stripe_lookup_keys(stripe_api, subscription.stripe_subscription_id) == STARTER


@pytest.mark.parametrize("to_key", ["pro_month", "pro_year"])
def test_plan_change_swaps_the_metered_prices_as_previewed(app, stripe_api, catalog, make_user,
                                                           deliver_webhooks, to_key):
    user = make_user()
    start = now() - 10 * 24 * HOUR
    clock, customer = on_clock(stripe_api, user, start)
    created = subscribe(stripe_api, customer.id, "starter_month")
    advance(stripe_api, clock, now(), deliver_webhooks)
    before = {item.price.to_dict()["metadata"].get("meter_key"): item.id
              for item in created["items"].data}
    with app.test_request_context("/"):
        preview = proration_preview(user.account, to_key)
        outcome = change_plan(user.account, to_key, preview.proration_date)
    assert outcome.applied
    interval = to_key.rsplit("_", 1)[1]
    expected = {"plan": to_key, **{meter: f"pro_{meter}_{interval}"
                                   for meter in ("api_calls", "storage_gb", "seats")}}
    assert stripe_lookup_keys(stripe_api, created.id) == expected
    deliver_webhooks()
    db.session.expire_all()
    subscription = live_subscription(user.account)
    assert metered_lookup_keys(subscription) == expected
    # Each meter keeps its item (the price is swapped), so its usage stays with it.
    after = {row.meter_key: row.stripe_item_id for row in db.session.scalars(
        db.select(SubscriptionItem).where(SubscriptionItem.subscription_id == subscription.id))}
    assert after == before
    invoice = stripe_api.v1.invoices.retrieve(outcome.invoice_id)
    # What the customer was shown is what was billed: metered items add no line now.
    assert sorted(line["amount"] for line in preview.lines) == sorted(
        line.amount for line in invoice.lines.data)
    assert (preview.total, preview.amount_due) == (invoice.total, invoice.amount_due)


def test_attach_metered_prices_completes_older_subscriptions_once(app, stripe_api, catalog,
                                                                   make_user, deliver_webhooks):
    older, complete = make_user(), make_user()
    for user, metered in ((older, False), (complete, True)):
        _clock, customer = on_clock(stripe_api, user, now())
        subscribe(stripe_api, customer.id, "starter_month", metered=metered)
    deliver_webhooks()
    db.session.expire_all()
    older_sub = live_subscription(older.account)
    assert metered_lookup_keys(older_sub) == {"plan": "starter_month"}

    runner = app.test_cli_runner()
    first = runner.invoke(args=["billing", "attach-metered-prices"])
    assert first.exit_code == 0, first.output
    assert f"updated: 1\n  {older_sub.stripe_subscription_id}" in first.output
    assert "already complete: 1" in first.output
    db.session.expire_all()
    assert metered_lookup_keys(older_sub) == STARTER
    assert stripe_lookup_keys(stripe_api, older_sub.stripe_subscription_id) == STARTER
    # Adding metered items bills nothing now: no invoice beyond the first one.
    invoices = stripe_api.v1.invoices.list(
        params={"subscription": older_sub.stripe_subscription_id}).data
    assert len(invoices) == 1

    again = attach_metered_prices()
    assert again.updated == [] and len(again.complete) == 2
    assert len(stripe_api.v1.subscriptions.retrieve(
        older_sub.stripe_subscription_id)["items"].data) == 4
