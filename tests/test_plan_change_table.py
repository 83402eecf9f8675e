"""Every kind of plan change shows, bills and renews exactly what Stripe's rules say.

Each cell builds a real subscription in the sandbox (on a test clock, ten days into its period),
takes the preview the customer is shown, confirms it through the portal, and compares preview,
invoice and subscription with numbers derived in tests/plan_change_rules.py from Stripe's
documented rules, never read back from the sandbox.
"""
from __future__ import annotations

import itertools
import time
from datetime import UTC, datetime

import pytest

from portal.extensions import db
from portal.services import sync
from portal.services.catalog import load_catalog
from portal.services.catalog_sync import sync_catalog
from portal.services.plan_changes import change_plan, proration_preview
from tests import plan_change_rules as rules

DAY = 86_400
CREDIT = 1_500
COUPON_PERCENT = 20
TAX_PERCENT = 10
TRIAL_DAYS = 14

CHANGES = {
    "monthly-up": ("starter_month", "pro_month"),
    "monthly-down": ("pro_month", "starter_month"),
    "monthly-to-yearly": ("starter_month", "pro_year"),
    "yearly-to-monthly": ("pro_year", "pro_month"),
    "yearly-down": ("pro_year", "starter_year"),
}
CELLS = [
    pytest.param(change, credit, coupon, tax,
                 id=f"{change}-{'credit' if credit else 'no_credit'}"
                    f"-{'coupon' if coupon else 'no_coupon'}-{'tax' if tax else 'no_tax'}")
    for change, credit, coupon, tax in itertools.product(
        CHANGES, (False, True), (False, True), (False, True))
]


def catalog_price(lookup_key: str) -> tuple[int, str]:
    """Return (amount, interval) of a catalog price from the catalog file."""
    plan_key, interval = lookup_key.rsplit("_", 1)
    plan = next(p for p in load_catalog()["plans"] if p["key"] == plan_key)
    return plan["monthly" if interval == "month" else "yearly"], interval


@pytest.fixture
def on_clock(app, stripe_api, make_user, deliver_webhooks):
    """Return a builder: an account whose customer lives on a test clock, subscribed to a price."""
    sync_catalog()

    def build(lookup_key: str, *, days_in: int = 10, credit: int = 0, coupon: bool = False,
              tax: bool = False, trial_days: int = 0):
        user = make_user()
        start = int(time.time()) - days_in * DAY
        clock = stripe_api.v1.test_helpers.test_clocks.create(params={"frozen_time": start})
        customer = stripe_api.v1.customers.create(params={
            "email": user.email, "test_clock": clock.id,
            "metadata": {"account_id": str(user.account_id)}})
        sync.link_customer(user.account, customer.id)
        db.session.commit()
        card = stripe_api.v1.payment_methods.attach("pm_card_visa",
                                                    params={"customer": customer.id})
        stripe_api.v1.customers.update(customer.id, params={
            "invoice_settings": {"default_payment_method": card.id}})
        price = stripe_api.v1.prices.list(params={"lookup_keys": [lookup_key]}).data[0]
        params: dict = {"customer": customer.id, "items": [{"price": price.id}]}
        if coupon:
            made = stripe_api.v1.coupons.create(params={"percent_off": COUPON_PERCENT,
                                                    "duration": "forever"})
            params["discounts"] = [{"coupon": made.id}]
        if tax:
            rate = stripe_api.v1.tax_rates.create(params={
                "display_name": "VAT", "percentage": TAX_PERCENT, "inclusive": False})
            params["default_tax_rates"] = [rate.id]
        if trial_days:
            params["trial_period_days"] = trial_days
        subscription = stripe_api.v1.subscriptions.create(params=params)
        if credit:
            # Credit granted after the first invoice, so it waits for the change's invoice.
            stripe_api.v1.customers.balance_transactions.create(customer.id, params={
                "amount": -credit, "currency": "usd", "description": "Goodwill credit"})
        now = int(time.time())
        stripe_api.v1.test_helpers.test_clocks.advance(clock.id, params={"frozen_time": now})
        deliver_webhooks()
        db.session.expire_all()
        return user, subscription.id, start, now

    return build


def _item(stripe_api, subscription_id: str):
    return stripe_api.v1.subscriptions.retrieve(subscription_id).items.data[0]


@pytest.mark.parametrize(("change", "credit", "coupon", "tax"), CELLS)
def test_plan_change_cell(app, stripe_api, on_clock, change, credit, coupon, tax):
    from_key, to_key = CHANGES[change]
    old_amount, old_interval = catalog_price(from_key)
    new_amount, new_interval = catalog_price(to_key)
    user, subscription_id, start, now = on_clock(
        from_key, credit=CREDIT if credit else 0, coupon=coupon, tax=tax)
    period = (start, rules.add_interval(start, old_interval))
    item = _item(stripe_api, subscription_id)
    assert (item.current_period_start, item.current_period_end) == period

    with app.test_request_context("/"):
        preview = proration_preview(user.account, to_key)
        outcome = change_plan(user.account, to_key, preview.proration_date)
    expected = rules.plan_change(
        old_amount=old_amount, old_interval=old_interval, new_amount=new_amount,
        new_interval=new_interval, period=period, at=preview.proration_date, now=now,
        coupon_percent=COUPON_PERCENT if coupon else 0, tax_percent=TAX_PERCENT if tax else 0,
        balance=-CREDIT if credit else 0)
    expected_lines = sorted(line.amount for line in expected.lines)

    # What the customer was shown.
    assert sorted(line["amount"] for line in preview.lines) == expected_lines
    assert preview.discount == sum(line.discount for line in expected.lines)
    assert preview.tax == sum(line.tax for line in expected.lines)
    assert preview.total == expected.total
    assert preview.amount_due == expected.amount_due
    assert preview.credit_used == expected.credit_used
    assert preview.period_end == datetime.fromtimestamp(expected.period_end, UTC)
    assert preview.renewal_total == expected.renewal_total

    # What Stripe billed and what the subscription became.
    assert outcome.applied
    invoice = stripe_api.v1.invoices.retrieve(outcome.invoice_id)
    assert sorted(line.amount for line in invoice.lines.data) == expected_lines
    assert (invoice.total, invoice.amount_due) == (expected.total, expected.amount_due)
    assert invoice.status == "paid"
    item = _item(stripe_api, subscription_id)
    assert item.price.lookup_key == to_key
    assert item.current_period_end == expected.period_end
    customer = stripe_api.v1.customers.retrieve(user.account.stripe_customer_id)
    assert customer.balance == expected.ending_balance
    renewal = stripe_api.v1.invoices.create_preview(params={"subscription": subscription_id})
    assert renewal.total == expected.renewal_total


@pytest.mark.parametrize(("from_key", "to_key"), [("starter_month", "pro_month"),
                                                  ("pro_month", "starter_month")],
                         ids=["trialing-up", "trialing-down"])
def test_plan_change_while_trialing(app, stripe_api, on_clock, from_key, to_key):
    new_amount, _interval = catalog_price(to_key)
    user, subscription_id, start, _now = on_clock(from_key, days_in=3, trial_days=TRIAL_DAYS)
    trial_end = start + TRIAL_DAYS * DAY
    before = stripe_api.v1.subscriptions.retrieve(subscription_id)
    assert (before.status, before.trial_end) == ("trialing", trial_end)

    with app.test_request_context("/"):
        preview = proration_preview(user.account, to_key)
        outcome = change_plan(user.account, to_key, preview.proration_date)
    expected = rules.trial_change(new_amount=new_amount, trial_end=trial_end)

    assert preview.trialing and preview.nothing_due and preview.lines == []
    assert preview.amount_due == expected.amount_due == 0
    assert preview.renewal_total == expected.renewal_total
    assert preview.renewal_at == datetime.fromtimestamp(expected.period_end, UTC)

    after = stripe_api.v1.subscriptions.retrieve(subscription_id)
    assert outcome.applied and after.status == "trialing" and after.trial_end == trial_end
    assert after.latest_invoice == before.latest_invoice  # nothing invoiced
    assert after.items.data[0].price.lookup_key == to_key
    assert after.items.data[0].current_period_end == expected.period_end
    renewal = stripe_api.v1.invoices.create_preview(params={"subscription": subscription_id})
    assert renewal.total == expected.renewal_total
