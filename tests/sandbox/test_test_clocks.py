"""Test clocks: advancing runs renewals, dunning, trials and expiry in Stripe's order."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import stripe

from tests.sandbox.billing_helpers import (
    DAY,
    customer,
    event_types,
    fixture_keys,
    price,
    subscribe,
)

START = int(datetime(2026, 1, 31, 12, 0, tzinfo=UTC).timestamp())
BILLING = ("customer.subscription.", "invoice.", "test_helpers.test_clock.")


def ts(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp())


def clock_customer(client, card="pm_card_visa", frozen_time=START):
    clock = client.v1.test_helpers.test_clocks.create(
        params={"frozen_time": frozen_time, "name": "billing"}
    )
    return clock, customer(client, card=card, test_clock=clock.id)


def advance(client, clock, to):
    advanced = client.v1.test_helpers.test_clocks.advance(clock.id, params={"frozen_time": to})
    assert advanced.status == "advancing"
    assert advanced.status_details.advancing.target_frozen_time == to
    ready = client.v1.test_helpers.test_clocks.retrieve(clock.id)
    assert (ready.status, ready.frozen_time) == ("ready", to)
    return ready


def test_two_billing_periods_in_stripe_event_order(stripe_client):
    clock, cus = clock_customer(stripe_client)
    sub = subscribe(stripe_client, cus, price(stripe_client, 1000))
    assert sub.start_date == START
    renewal = [
        "invoice.upcoming",
        "invoice.created",
        "customer.subscription.updated",
        "invoice.finalized",
        "invoice.paid",
        "invoice.payment_succeeded",
    ]
    advance(stripe_client, clock, ts(2026, 2, 28, 13, 30))
    advance(stripe_client, clock, ts(2026, 3, 31, 13, 30))
    assert event_types(stripe_client, BILLING) == [
        "test_helpers.test_clock.created",
        "customer.subscription.created",
        "invoice.created",
        "invoice.finalized",
        "invoice.paid",
        "invoice.payment_succeeded",
        "customer.subscription.updated",
        "test_helpers.test_clock.advancing",
        *renewal,
        "test_helpers.test_clock.ready",
        "test_helpers.test_clock.advancing",
        *renewal,
        "test_helpers.test_clock.ready",
    ]
    sub = stripe_client.v1.subscriptions.retrieve(sub.id)
    item = sub["items"].data[0]
    # The anchor on the 31st clamps to Feb 28 and returns to Mar 31.
    assert (item.current_period_start, item.current_period_end) == (
        ts(2026, 3, 31, 12),
        ts(2026, 4, 30, 12),
    )
    invoices = stripe_client.v1.invoices.list(params={"subscription": sub.id}).data
    assert [i.billing_reason for i in invoices] == [
        "subscription_cycle",
        "subscription_cycle",
        "subscription_create",
    ]
    assert [i.created for i in invoices] == [ts(2026, 3, 31, 12), ts(2026, 2, 28, 12), START]
    assert invoices[0].status_transitions.finalized_at == ts(2026, 3, 31, 13)
    assert (invoices[1].period_start, invoices[1].period_end) == (START, ts(2026, 2, 28, 12))
    assert all(i.status == "paid" for i in invoices)
    assert [i.number[-4:] for i in invoices] == ["0003", "0002", "0001"]
    assert set(clock.to_dict()) == fixture_keys("test_helpers.test_clock")


def test_dunning_ends_in_cancellation(stripe_client):
    clock, cus = clock_customer(stripe_client)
    sub = subscribe(stripe_client, cus, price(stripe_client, 1000))
    bad = stripe_client.v1.payment_methods.attach(
        "pm_card_chargeCustomerFail", params={"customer": cus.id}
    )
    stripe_client.v1.customers.update(
        cus.id, params={"invoice_settings": {"default_payment_method": bad.id}}
    )
    advance(stripe_client, clock, ts(2026, 2, 28, 13, 30))
    assert stripe_client.v1.subscriptions.retrieve(sub.id).status == "past_due"
    invoice = stripe_client.v1.invoices.list(params={"subscription": sub.id}).data[0]
    assert (invoice.status, invoice.attempt_count) == ("open", 1)
    assert invoice.next_payment_attempt == ts(2026, 3, 1, 13)
    advance(stripe_client, clock, ts(2026, 3, 8, 14))
    sub = stripe_client.v1.subscriptions.retrieve(sub.id)
    assert sub.status == "canceled"
    assert sub.cancellation_details.reason == "payment_failed"
    assert sub.ended_at == ts(2026, 3, 7, 13)
    invoice = stripe_client.v1.invoices.retrieve(invoice.id)
    assert (invoice.status, invoice.attempt_count, invoice.next_payment_attempt) == (
        "open",
        5,
        None,
    )
    types = event_types(stripe_client, (*BILLING[:1], "invoice.pay", BILLING[2]))
    after_creation = types[types.index("test_helpers.test_clock.advancing") :]
    assert [t for t in after_creation if not t.startswith(BILLING[2])] == [
        "customer.subscription.updated",  # the renewal
        "invoice.payment_failed",
        "customer.subscription.updated",  # past_due
        "invoice.payment_failed",
        "invoice.payment_failed",
        "invoice.payment_failed",
        "invoice.payment_failed",
        "customer.subscription.deleted",
    ]


def test_dunning_can_end_unpaid(sandbox, stripe_client):
    sandbox.app.config["SANDBOX_DUNNING_FINAL_ACTION"] = "unpaid"
    clock, cus = clock_customer(stripe_client)
    sub = subscribe(stripe_client, cus, price(stripe_client, 1000))
    bad = stripe_client.v1.payment_methods.attach(
        "pm_card_chargeCustomerFail", params={"customer": cus.id}
    )
    stripe_client.v1.subscriptions.update(sub.id, params={"default_payment_method": bad.id})
    advance(stripe_client, clock, ts(2026, 3, 8, 14))
    assert stripe_client.v1.subscriptions.retrieve(sub.id).status == "unpaid"
    good = stripe_client.v1.payment_methods.attach("pm_card_visa", params={"customer": cus.id})
    invoice = stripe_client.v1.invoices.list(params={"subscription": sub.id, "status": "open"})
    stripe_client.v1.invoices.pay(invoice.data[0].id, params={"payment_method": good.id})
    assert stripe_client.v1.subscriptions.retrieve(sub.id).status == "active"


def test_trial_end_on_a_clock(stripe_client):
    clock, cus = clock_customer(stripe_client)
    sub = subscribe(stripe_client, cus, price(stripe_client, 1000), trial_period_days=7)
    advance(stripe_client, clock, START + 4 * DAY + 60)
    assert event_types(stripe_client, ("customer.subscription.trial",)) == [
        "customer.subscription.trial_will_end"
    ]
    advance(stripe_client, clock, START + 7 * DAY + 2 * 3600)
    sub = stripe_client.v1.subscriptions.retrieve(sub.id, params={"expand": ["latest_invoice"]})
    assert sub.status == "active"
    assert sub.latest_invoice.status == "paid" and sub.latest_invoice.amount_paid == 1000
    assert sub["items"].data[0].current_period_start == START + 7 * DAY


def test_incomplete_expires_after_23_hours(stripe_client):
    clock, cus = clock_customer(stripe_client, card="pm_card_chargeCustomerFail")
    sub = subscribe(stripe_client, cus, price(stripe_client, 1000))
    assert sub.status == "incomplete"
    advance(stripe_client, clock, START + 22 * 3600)
    assert stripe_client.v1.subscriptions.retrieve(sub.id).status == "incomplete"
    advance(stripe_client, clock, START + 24 * 3600)
    sub = stripe_client.v1.subscriptions.retrieve(sub.id, params={"expand": ["latest_invoice"]})
    assert sub.status == "incomplete_expired"
    assert sub.latest_invoice.status == "void"


def test_advance_limits_and_delete(stripe_client):
    clock, cus = clock_customer(stripe_client)
    subscribe(stripe_client, cus, price(stripe_client, 1000, interval="week"))
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.test_helpers.test_clocks.advance(
            clock.id, params={"frozen_time": START + 15 * DAY}
        )
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.test_helpers.test_clocks.advance(
            clock.id, params={"frozen_time": START - 1}
        )
    listed = stripe_client.v1.test_helpers.test_clocks.list()
    assert [c.id for c in listed.data] == [clock.id]
    deleted = stripe_client.v1.test_helpers.test_clocks.delete(clock.id)
    assert deleted.deleted is True
    assert stripe_client.v1.customers.retrieve(cus.id).to_dict()["deleted"] is True


def test_renewal_invoice_picks_up_pending_prorations(stripe_client):
    clock, cus = clock_customer(stripe_client)
    sub = subscribe(stripe_client, cus, price(stripe_client, 3000))
    item = sub["items"].data[0]
    advance(stripe_client, clock, START + 10 * DAY)
    stripe_client.v1.subscriptions.update(
        sub.id, params={"items": [{"id": item.id, "quantity": 2}]}
    )
    credit, charge = sorted(
        ii.amount
        for ii in stripe_client.v1.invoice_items.list(
            params={"customer": cus.id, "pending": True}
        ).data
    )
    advance(stripe_client, clock, item.current_period_end + 2 * 3600)
    invoice = stripe_client.v1.invoices.list(params={"subscription": sub.id}).data[0]
    assert sorted(line.amount for line in invoice.lines.data) == sorted([credit, charge, 6000])
    assert invoice.total == credit + charge + 6000 and invoice.status == "paid"
    assert (
        stripe_client.v1.invoice_items.list(params={"customer": cus.id, "pending": True}).data == []
    )


def test_cancel_at_period_end_on_a_clock(stripe_client):
    clock, cus = clock_customer(stripe_client)
    sub = subscribe(stripe_client, cus, price(stripe_client, 1000))
    stripe_client.v1.subscriptions.update(sub.id, params={"cancel_at_period_end": True})
    end = sub["items"].data[0].current_period_end
    advance(stripe_client, clock, end + 2 * 3600)
    sub = stripe_client.v1.subscriptions.retrieve(sub.id)
    assert (sub.status, sub.ended_at) == ("canceled", end)
    assert [
        i.billing_reason
        for i in stripe_client.v1.invoices.list(params={"subscription": sub.id}).data
    ] == ["subscription_create"]
    types = event_types(stripe_client, BILLING)
    assert "invoice.upcoming" not in types
    assert types[-2:] == ["customer.subscription.deleted", "test_helpers.test_clock.ready"]


def test_send_invoice_subscription_finalizes_an_hour_later(stripe_client):
    clock, cus = clock_customer(stripe_client, card=None)
    sub = subscribe(
        stripe_client,
        cus,
        price(stripe_client, 1000),
        collection_method="send_invoice",
        days_until_due=30,
        expand=["latest_invoice"],
    )
    assert (sub.status, sub.latest_invoice.status) == ("active", "draft")
    advance(stripe_client, clock, START + 3600)
    invoice = stripe_client.v1.invoices.retrieve(sub.latest_invoice.id)
    assert invoice.status == "open" and invoice.due_date == START + 30 * DAY
    assert invoice.attempt_count == 0


@pytest.mark.parametrize(
    "duration,months,newest_first",
    [
        ("once", None, [1000, 1000, 500]),
        ("repeating", 2, [1000, 500, 500]),  # ends Mar 31: the invoice starting then is full price
        ("forever", None, [500, 500, 500]),
    ],
)
def test_coupon_duration_across_renewals(stripe_client, duration, months, newest_first):
    params = {"percent_off": 50, "duration": duration}
    if months:
        params["duration_in_months"] = months
    coupon = stripe_client.v1.coupons.create(params=params)
    clock, cus = clock_customer(stripe_client)
    sub = subscribe(
        stripe_client, cus, price(stripe_client, 1000), discounts=[{"coupon": coupon.id}]
    )
    advance(stripe_client, clock, ts(2026, 2, 28, 13, 30))
    advance(stripe_client, clock, ts(2026, 3, 31, 13, 30))
    invoices = stripe_client.v1.invoices.list(params={"subscription": sub.id}).data
    assert [i.total for i in invoices] == newest_first
