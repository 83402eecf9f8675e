"""The Stripe behaviours a plan change touches, each following the Stripe docs page it names."""

from __future__ import annotations

import pytest
import stripe

from tests.sandbox.billing_helpers import DAY, customer, event_types, price, subscribe
from tests.sandbox.checkout_support import monthly_price, pay


def _clocked_customer(client, at: int, card: str = "pm_card_visa"):
    clock = client.v1.test_helpers.test_clocks.create(params={"frozen_time": at})
    return clock, customer(client, card=card, test_clock=clock.id)


def _advance(client, clock, to: int) -> None:
    client.v1.test_helpers.test_clocks.advance(clock.id, params={"frozen_time": to})


def _item(client, sub_id: str):
    return client.v1.subscriptions.retrieve(sub_id)["items"].data[0]


START = 1_790_000_000  # a fixed instant: 2026-09-21 UTC


@pytest.mark.parametrize("mode", ["classic", "flexible"])
def test_interval_change_resets_the_anchor_and_invoices_at_once(stripe_client, mode):
    """docs.stripe.com/billing/subscriptions/change-price: a price with another interval resets
    the billing cycle anchor to the change and invoices the new price's full period now, with
    the unused time on the old price credited (billing-mode/compare: in both modes)."""
    monthly, yearly = price(stripe_client, 1000), price(stripe_client, 10000, interval="year")
    clock, cus = _clocked_customer(stripe_client, START)
    sub = subscribe(stripe_client, cus, monthly, billing_mode={"type": mode})
    assert sub.billing_mode.type == mode
    _advance(stripe_client, clock, START + 10 * DAY)
    item = _item(stripe_client, sub.id)
    start, end = item.current_period_start, item.current_period_end
    updated = stripe_client.v1.subscriptions.update(sub.id, params={
        "items": [{"id": item.id, "price": yearly.id}], "proration_date": START + 10 * DAY,
        "expand": ["latest_invoice"]})
    now = START + 10 * DAY
    new_item = updated["items"].data[0]
    assert (new_item.current_period_start, new_item.current_period_end) == (
        now, now + 365 * DAY)  # 2026-10-01 to 2027-10-01: no leap day between
    assert updated.billing_cycle_anchor == now
    invoice = updated.latest_invoice
    assert invoice.billing_reason == "subscription_update" and invoice.status == "paid"
    credit = -round(1000 * (end - now) / (end - start))
    assert sorted(line.amount for line in invoice.lines.data) == sorted([credit, 10000])
    assert invoice.total == 10000 + credit


@pytest.mark.parametrize(("mode", "credited_quantity"), [("classic", 2), ("flexible", 1)])
def test_credit_proration_follows_the_billing_mode(stripe_client, mode, credited_quantity):
    """docs.stripe.com/billing/subscriptions/billing-mode/compare: classic credits unused time
    at the item's current price and quantity; flexible credits what was actually debited."""
    basic, cheap = price(stripe_client, 1000), price(stripe_client, 100)
    clock, cus = _clocked_customer(stripe_client, START)
    sub = subscribe(stripe_client, cus, basic, billing_mode={"type": mode})
    item = sub["items"].data[0]
    # Quantity 2 without proration: nothing more is debited for this period.
    stripe_client.v1.subscriptions.update(sub.id, params={
        "items": [{"id": item.id, "quantity": 2}], "proration_behavior": "none"})
    half = START + (item.current_period_end - START) // 2
    _advance(stripe_client, clock, half)
    preview = stripe_client.v1.invoices.create_preview(params={
        "subscription": sub.id, "subscription_details": {
            "items": [{"id": item.id, "price": cheap.id, "quantity": 1}],
            "proration_behavior": "always_invoice", "proration_date": half}})
    credit = min(line.amount for line in preview.lines.data)
    share = (item.current_period_end - half) / (item.current_period_end - START)
    assert credit == -round(1000 * credited_quantity * share)


def test_billing_cycle_anchor_now_on_update(stripe_client):
    """docs.stripe.com/billing/subscriptions/billing-cycle: billing_cycle_anchor=now on an
    update starts a new period now and invoices it at once, crediting the unused time."""
    monthly = price(stripe_client, 3000)
    clock, cus = _clocked_customer(stripe_client, START)
    sub = subscribe(stripe_client, cus, monthly)
    _advance(stripe_client, clock, START + 5 * DAY)
    updated = stripe_client.v1.subscriptions.update(sub.id, params={
        "billing_cycle_anchor": "now", "proration_behavior": "create_prorations",
        "expand": ["latest_invoice"]})
    item = updated["items"].data[0]
    assert updated.billing_cycle_anchor == START + 5 * DAY == item.current_period_start
    assert updated.latest_invoice.total > 0 and updated.latest_invoice.total < 3000


def test_future_billing_cycle_anchor_on_create(stripe_client):
    """docs.stripe.com/billing/subscriptions/billing-cycle: a future anchor on create bills the
    time until the anchor prorated now, then full periods from the anchor."""
    monthly = price(stripe_client, 3000)
    _clock, cus = _clocked_customer(stripe_client, START)
    anchor = START + 10 * DAY
    sub = subscribe(stripe_client, cus, monthly, billing_cycle_anchor=anchor,
                    expand=["latest_invoice"])
    item = sub["items"].data[0]
    assert (item.current_period_start, item.current_period_end) == (START, anchor)
    assert sub.billing_cycle_anchor == anchor
    full = 30 * DAY  # the period the anchor closes is 2026-09-01 .. 2026-10-01
    assert sub.latest_invoice.total == round(3000 * (anchor - START) / full)
    with pytest.raises(stripe.InvalidRequestError):
        subscribe(stripe_client, cus, monthly, billing_cycle_anchor=START - DAY)


def test_trial_end_now_ends_the_trial_and_bills(stripe_client):
    """docs.stripe.com/billing/subscriptions/trials: trial_end=now ends the trial at once, the
    subscription becomes active and its first invoice is created and paid."""
    monthly = price(stripe_client, 2000)
    clock, cus = _clocked_customer(stripe_client, START)
    sub = subscribe(stripe_client, cus, monthly, trial_period_days=14)
    _advance(stripe_client, clock, START + 2 * DAY)
    updated = stripe_client.v1.subscriptions.update(sub.id, params={
        "trial_end": "now", "expand": ["latest_invoice"]})
    assert updated.status == "active" and updated.trial_end == START + 2 * DAY
    assert updated.latest_invoice.amount_paid == 2000
    assert updated["items"].data[0].current_period_start == START + 2 * DAY
    assert {"customer.subscription.updated", "invoice.paid"} <= set(event_types(stripe_client))


def test_customer_balance_transactions_apply_to_invoices_and_previews(stripe_client):
    """docs.stripe.com/billing/customer/balance: credit applies to the next finalized invoice
    (starting_balance, amount_due), and create_preview shows it the same way."""
    monthly = price(stripe_client, 2000)
    cus = customer(stripe_client)
    txn = stripe_client.v1.customers.balance_transactions.create(cus.id, params={
        "amount": -500, "currency": "usd", "description": "Goodwill"})
    assert (txn.object, txn.type, txn.ending_balance) == (
        "customer_balance_transaction", "adjustment", -500)
    listed = stripe_client.v1.customers.balance_transactions.list(cus.id)
    assert [t.id for t in listed.data] == [txn.id]
    preview = stripe_client.v1.invoices.create_preview(params={
        "customer": cus.id, "subscription_details": {"items": [{"price": monthly.id}]}})
    assert (preview.starting_balance, preview.amount_due) == (-500, 1500)
    sub = subscribe(stripe_client, cus, monthly, expand=["latest_invoice"])
    invoice = sub.latest_invoice
    assert (invoice.starting_balance, invoice.ending_balance, invoice.amount_due) == (
        -500, 0, 1500)
    assert stripe_client.v1.customers.retrieve(cus.id).balance == 0
    kinds = [t.type for t in stripe_client.v1.customers.balance_transactions.list(cus.id).data]
    assert kinds == ["applied_to_invoice", "adjustment"]


def test_pending_update_applies_only_when_paid(stripe_client):
    """docs.stripe.com/billing/subscriptions/pending-updates: with pending_if_incomplete a
    declined payment keeps the old items and records pending_update; paying applies it."""
    basic, pro = price(stripe_client, 1000), price(stripe_client, 5000)
    cus = customer(stripe_client)
    sub = subscribe(stripe_client, cus, basic)
    item = sub["items"].data[0]
    declining = stripe_client.v1.payment_methods.attach(
        "pm_card_chargeCustomerFail", params={"customer": cus.id})
    stripe_client.v1.customers.update(cus.id, params={
        "invoice_settings": {"default_payment_method": declining.id}})
    updated = stripe_client.v1.subscriptions.update(sub.id, params={
        "items": [{"id": item.id, "price": pro.id}], "proration_behavior": "always_invoice",
        "payment_behavior": "pending_if_incomplete"})
    assert updated.status == "active"
    assert updated["items"].data[0].price.id == basic.id
    assert updated.pending_update.subscription_items[0].price.id == pro.id
    assert updated.pending_update.expires_at > updated.created
    invoice = stripe_client.v1.invoices.retrieve(updated.latest_invoice)
    assert invoice.status == "open"
    good = stripe_client.v1.payment_methods.attach("pm_card_visa", params={"customer": cus.id})
    stripe_client.v1.invoices.pay(invoice.id, params={"payment_method": good.id})
    after = stripe_client.v1.subscriptions.retrieve(sub.id)
    assert after.pending_update is None and after["items"].data[0].price.id == pro.id


def test_pending_update_expires(stripe_client):
    """docs.stripe.com/billing/subscriptions/pending-updates: an unpaid pending update expires
    after 23 hours: pending_update is cleared and customer.subscription.pending_update_expired
    is sent; the subscription keeps its old items."""
    basic, pro = price(stripe_client, 1000), price(stripe_client, 5000)
    clock, cus = _clocked_customer(stripe_client, START)
    sub = subscribe(stripe_client, cus, basic)
    declining = stripe_client.v1.payment_methods.attach(
        "pm_card_chargeCustomerFail", params={"customer": cus.id})
    stripe_client.v1.customers.update(cus.id, params={
        "invoice_settings": {"default_payment_method": declining.id}})
    updated = stripe_client.v1.subscriptions.update(sub.id, params={
        "items": [{"id": sub["items"].data[0].id, "price": pro.id}],
        "proration_behavior": "always_invoice", "payment_behavior": "pending_if_incomplete"})
    assert updated.pending_update.expires_at == START + 23 * 3600
    _advance(stripe_client, clock, START + DAY)
    after = stripe_client.v1.subscriptions.retrieve(sub.id)
    assert after.pending_update is None and after["items"].data[0].price.id == basic.id
    assert after.status == "active"
    assert stripe_client.v1.invoices.retrieve(updated.latest_invoice).status == "void"
    assert "customer.subscription.pending_update_expired" in event_types(stripe_client)


def test_voiding_the_invoice_discards_the_pending_update(stripe_client):
    """docs.stripe.com/billing/subscriptions/pending-updates-reference: voiding the invoice of
    a pending update discards the update; the subscription keeps its items and stays active."""
    basic, pro = price(stripe_client, 1000), price(stripe_client, 5000, interval="year")
    cus = customer(stripe_client)
    sub = subscribe(stripe_client, cus, basic)
    declining = stripe_client.v1.payment_methods.attach(
        "pm_card_chargeCustomerFail", params={"customer": cus.id})
    stripe_client.v1.customers.update(cus.id, params={
        "invoice_settings": {"default_payment_method": declining.id}})
    period_end = sub["items"].data[0].current_period_end
    updated = stripe_client.v1.subscriptions.update(sub.id, params={
        "items": [{"id": sub["items"].data[0].id, "price": pro.id}],
        "payment_behavior": "pending_if_incomplete"})
    assert updated.pending_update.billing_cycle_anchor is not None
    stripe_client.v1.invoices.void_invoice(updated.latest_invoice)
    after = stripe_client.v1.subscriptions.retrieve(sub.id)
    assert after.pending_update is None and after.status == "active"
    assert after["items"].data[0].price.id == basic.id
    assert after["items"].data[0].current_period_end == period_end


def test_promotion_code_restrictions(stripe_client):
    """docs.stripe.com/api/promotion_codes/create: restrictions.first_time_transaction allows
    only customers who never paid; restrictions.minimum_amount needs that invoice amount."""
    monthly, cheap = price(stripe_client, 2000), price(stripe_client, 500)
    coupon = stripe_client.v1.coupons.create(params={"percent_off": 10, "duration": "once"})
    first = stripe_client.v1.promotion_codes.create(params={
        "promotion": {"type": "coupon", "coupon": coupon.id}, "code": "WELCOME",
        "restrictions": {"first_time_transaction": True}})
    minimum = stripe_client.v1.promotion_codes.create(params={
        "promotion": {"type": "coupon", "coupon": coupon.id}, "code": "BIG",
        "restrictions": {"minimum_amount": 1000, "minimum_amount_currency": "usd"}})
    payer = customer(stripe_client)
    subscribe(stripe_client, payer, monthly)
    with pytest.raises(stripe.InvalidRequestError, match="first"):
        subscribe(stripe_client, payer, monthly, discounts=[{"promotion_code": first.id}])
    newcomer = customer(stripe_client)
    with pytest.raises(stripe.InvalidRequestError, match="minimum"):
        subscribe(stripe_client, newcomer, cheap, discounts=[{"promotion_code": minimum.id}])
    ok = subscribe(stripe_client, newcomer, monthly, discounts=[{"promotion_code": first.id}],
                   expand=["latest_invoice"])
    assert ok.latest_invoice.total == 1800


@pytest.mark.parametrize("mode", ["classic", None])
def test_checkout_subscription_takes_billing_mode_and_the_card_paid_with(stripe_client, sandbox,
                                                                         mode):
    """docs.stripe.com/api/checkout/sessions/create (subscription_data.billing_mode; flexible
    when not given at this API version) and docs.stripe.com/payments/checkout/save-during-payment:
    the card paid with becomes the subscription's default_payment_method."""
    monthly = monthly_price(stripe_client)
    data = {"billing_mode": {"type": mode}} if mode else {}
    session = stripe_client.v1.checkout.sessions.create(params={
        "mode": "subscription", "line_items": [{"price": monthly.id, "quantity": 1}],
        "customer_email": "mode@example.com", "success_url": "https://shop.test/ok",
        "subscription_data": data})
    assert pay(sandbox, session).status_code == 303
    done = stripe_client.v1.checkout.sessions.retrieve(
        session.id, params={"expand": ["subscription"]})
    sub = done.subscription
    assert sub.billing_mode.type == (mode or "flexible")
    card = stripe_client.v1.payment_methods.retrieve(sub.default_payment_method)
    assert card.customer == done.customer and card.card.last4 == "4242"


def test_create_preview_shows_the_renewal_after_an_interval_change(stripe_client):
    """docs.stripe.com/api/invoices/create_preview (preview_mode=recurring) with
    docs.stripe.com/billing/subscriptions/change-price: after monthly to yearly the next
    renewal is a full year after the change, at the yearly price."""
    monthly, yearly = price(stripe_client, 1000), price(stripe_client, 10000, interval="year")
    clock, cus = _clocked_customer(stripe_client, START)
    sub = subscribe(stripe_client, cus, monthly)
    _advance(stripe_client, clock, START + 10 * DAY)
    item = _item(stripe_client, sub.id)
    recurring = stripe_client.v1.invoices.create_preview(params={
        "subscription": sub.id, "preview_mode": "recurring",
        "subscription_details": {"items": [{"id": item.id, "price": yearly.id}],
                                 "proration_behavior": "always_invoice"}})
    line = recurring.lines.data[0]
    renewal = START + 10 * DAY + 365 * DAY  # 2027-10-01: no leap day between
    assert (line.period.start, line.amount, recurring.total) == (renewal, 10000, 10000)
