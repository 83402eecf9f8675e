"""Subscriptions through the SDK: payment behaviours, declines, trials, cancellation."""

from __future__ import annotations

import time

import pytest
import stripe

from portal.sandbox.billing.engine import run_billing
from tests.sandbox.billing_helpers import (
    customer,
    event_types,
    fixture_keys,
    price,
    subscribe,
)


def test_create_with_good_card_pays_first_invoice(stripe_client):
    pro = price(stripe_client, 2000)
    cus = customer(stripe_client)
    sub = subscribe(stripe_client, cus, pro, expand=["latest_invoice"])
    assert sub.status == "active"
    invoice = sub.latest_invoice
    assert invoice.status == "paid"
    assert invoice.billing_reason == "subscription_create"
    assert invoice.amount_paid == 2000
    assert invoice.number.startswith(stripe_client.v1.customers.retrieve(cus.id).invoice_prefix)
    assert invoice.parent.subscription_details.subscription == sub.id
    item = sub["items"].data[0]
    assert item.current_period_end > item.current_period_start
    assert item.price.id == pro.id and item.plan.id == pro.id
    assert event_types(stripe_client, ("customer.subscription.", "invoice.")) == [
        "customer.subscription.created",
        "invoice.created",
        "invoice.finalized",
        "invoice.paid",
        "invoice.payment_succeeded",
        "customer.subscription.updated",
    ]


def test_fixture_keys_of_subscription_objects(stripe_client):
    cus = customer(stripe_client)
    sub = subscribe(stripe_client, cus, price(stripe_client))
    assert set(sub.to_dict()) == fixture_keys("subscription")
    item = stripe_client.v1.subscription_items.retrieve(sub["items"].data[0].id)
    assert set(item.to_dict()) == fixture_keys("subscription_item")


def _first_payment_intent(client, invoice_id):
    payments = client.v1.invoice_payments.list(params={"invoice": invoice_id})
    return client.v1.payment_intents.retrieve(payments.data[0].payment.payment_intent)


@pytest.mark.parametrize(
    "behavior", ["allow_incomplete", "default_incomplete", "error_if_incomplete"]
)
def test_payment_behaviors_with_good_card(stripe_client, behavior):
    cus = customer(stripe_client)
    sub = subscribe(
        stripe_client,
        cus,
        price(stripe_client, 1500),
        payment_behavior=behavior,
        expand=["latest_invoice.confirmation_secret"],
    )
    if behavior == "default_incomplete":
        assert sub.status == "incomplete"
        assert sub.latest_invoice.status == "open"
        secret = sub.latest_invoice.confirmation_secret.client_secret
        pi = _first_payment_intent(stripe_client, sub.latest_invoice.id)
        assert secret == pi.client_secret and pi.amount == 1500
        stripe_client.v1.payment_intents.confirm(pi.id)
        assert stripe_client.v1.subscriptions.retrieve(sub.id).status == "active"
        assert stripe_client.v1.invoices.retrieve(sub.latest_invoice.id).status == "paid"
    else:
        assert sub.status == "active"
        assert sub.latest_invoice.status == "paid"


def test_allow_incomplete_with_declining_card(stripe_client):
    cus = customer(stripe_client, card="pm_card_chargeCustomerFail")
    sub = subscribe(stripe_client, cus, price(stripe_client), expand=["latest_invoice"])
    assert sub.status == "incomplete"
    assert sub.latest_invoice.status == "open"
    assert sub.latest_invoice.attempt_count == 1
    assert sub.latest_invoice.next_payment_attempt is None
    assert "invoice.payment_failed" in event_types(stripe_client, ("invoice.",))
    good = stripe_client.v1.payment_methods.attach("pm_card_visa", params={"customer": cus.id})
    paid = stripe_client.v1.invoices.pay(sub.latest_invoice.id, params={"payment_method": good.id})
    assert paid.status == "paid"
    assert stripe_client.v1.subscriptions.retrieve(sub.id).status == "active"


def test_error_if_incomplete_with_declining_card_creates_nothing(stripe_client):
    cus = customer(stripe_client, card="pm_card_chargeCustomerFail")
    with pytest.raises(stripe.CardError) as caught:
        subscribe(stripe_client, cus, price(stripe_client), payment_behavior="error_if_incomplete")
    assert caught.value.code == "card_declined"
    assert (
        stripe_client.v1.subscriptions.list(params={"customer": cus.id, "status": "all"}).data == []
    )


def test_default_incomplete_with_declining_card_stays_incomplete(stripe_client):
    cus = customer(stripe_client, card="pm_card_chargeCustomerFail")
    sub = subscribe(stripe_client, cus, price(stripe_client), payment_behavior="default_incomplete")
    assert sub.status == "incomplete"
    pi = _first_payment_intent(stripe_client, sub.latest_invoice)
    with pytest.raises(stripe.CardError):
        stripe_client.v1.payment_intents.confirm(pi.id)
    assert stripe_client.v1.subscriptions.retrieve(sub.id).status == "incomplete"


def test_authentication_required_on_first_payment(stripe_client):
    cus = customer(stripe_client, card="pm_card_authenticationRequired")
    sub = subscribe(stripe_client, cus, price(stripe_client), expand=["latest_invoice"])
    assert sub.status == "incomplete"
    assert sub.latest_invoice.status == "open"
    assert event_types(stripe_client, ("invoice.payment",)) == ["invoice.payment_action_required"]
    pi = _first_payment_intent(stripe_client, sub.latest_invoice.id)
    assert pi.status == "requires_action"
    stripe_client.raw_request("post", f"/v1/sandbox/three_d_secure/{pi.id}/complete")
    assert stripe_client.v1.subscriptions.retrieve(sub.id).status == "active"


def test_trial_creates_zero_invoice_and_trialing_status(stripe_client):
    cus = customer(stripe_client)
    sub = subscribe(
        stripe_client,
        cus,
        price(stripe_client, 3000),
        trial_period_days=14,
        expand=["latest_invoice"],
    )
    assert sub.status == "trialing"
    assert sub.trial_end - sub.trial_start == 14 * 86_400
    assert sub["items"].data[0].current_period_end == sub.trial_end
    invoice = sub.latest_invoice
    assert (invoice.status, invoice.total, invoice.amount_paid) == ("paid", 0, 0)
    assert invoice.lines.data[0].description == "Trial period for Pro"


def test_cancel_at_period_end_and_resume(stripe_client):
    cus = customer(stripe_client)
    sub = subscribe(stripe_client, cus, price(stripe_client))
    end = sub["items"].data[0].current_period_end
    scheduled = stripe_client.v1.subscriptions.update(sub.id, params={"cancel_at_period_end": True})
    assert scheduled.cancel_at_period_end is True
    assert scheduled.cancel_at == end
    assert scheduled.status == "active"
    assert scheduled.cancellation_details.reason == "cancellation_requested"
    resumed = stripe_client.v1.subscriptions.update(sub.id, params={"cancel_at_period_end": False})
    assert resumed.cancel_at_period_end is False
    assert resumed.cancel_at is None and resumed.canceled_at is None
    events = stripe_client.v1.events.list(params={"type": "customer.subscription.updated"}).data
    assert events[0].data.previous_attributes["cancel_at_period_end"] is True
    assert events[1].data.previous_attributes["cancel_at_period_end"] is False


def test_cancel_now(stripe_client):
    cus = customer(stripe_client)
    sub = subscribe(stripe_client, cus, price(stripe_client))
    canceled = stripe_client.v1.subscriptions.cancel(sub.id)
    assert canceled.status == "canceled"
    assert canceled.ended_at is not None and canceled.canceled_at == canceled.ended_at
    assert (
        event_types(stripe_client, ("customer.subscription.",))[-1]
        == "customer.subscription.deleted"
    )
    assert stripe_client.v1.subscriptions.list(params={"customer": cus.id}).data == []
    listed = stripe_client.v1.subscriptions.list(params={"customer": cus.id, "status": "canceled"})
    assert [s.id for s in listed.data] == [sub.id]


def test_cancel_now_with_proration_credits_unused_time(stripe_client):
    cus = customer(stripe_client)
    sub = subscribe(stripe_client, cus, price(stripe_client, 3000))
    stripe_client.v1.subscriptions.cancel(sub.id, params={"prorate": True, "invoice_now": True})
    invoices = stripe_client.v1.invoices.list(params={"subscription": sub.id}).data
    final = invoices[0]
    assert final.billing_reason == "subscription_cycle"
    assert final.total < 0 and final.total >= -3000
    assert final.lines.data[0].parent.subscription_item_details.proration is True
    assert stripe_client.v1.customers.retrieve(cus.id).balance == final.total


def test_list_filters(stripe_client):
    cus = customer(stripe_client)
    basic, pro = price(stripe_client, 500, name="Basic"), price(stripe_client, 900)
    a = subscribe(stripe_client, cus, basic)
    b = subscribe(stripe_client, cus, pro)
    by_price = stripe_client.v1.subscriptions.list(params={"price": pro.id})
    assert [s.id for s in by_price.data] == [b.id]
    active = stripe_client.v1.subscriptions.list(params={"customer": cus.id, "status": "active"})
    assert {s.id for s in active.data} == {a.id, b.id}


def test_engine_runs_on_real_time_before_each_request(sandbox, stripe_client):
    cus = customer(stripe_client)
    sub = subscribe(
        stripe_client, cus, price(stripe_client), trial_end=int(time.time()) + 2 * 86_400
    )
    assert sub.status == "trialing"
    # Under three days of trial left: trial_will_end is due at once, handled by the next request.
    assert event_types(stripe_client, ("customer.subscription.trial",)) == [
        "customer.subscription.trial_will_end"
    ]
    assert run_billing(sandbox.app) == 0


def test_time_moves_without_requests_when_the_delivery_loop_runs(start_sandbox):
    import sqlite3
    import time as wall

    running = start_sandbox(delivery="thread")
    client = running.client()
    customer = client.v1.customers.create(params={"email": "loop@example.com"})
    client.v1.payment_methods.attach("pm_card_visa", params={"customer": customer.id})
    product = client.v1.products.create(params={"name": "Loop"})
    price_obj = client.v1.prices.create(params={
        "product": product.id, "currency": "usd", "unit_amount": 700,
        "recurring": {"interval": "month"}})
    card = client.v1.payment_methods.list(params={"customer": customer.id}).data[0]
    sub = client.v1.subscriptions.create(params={
        "customer": customer.id, "items": [{"price": price_obj.id}],
        "default_payment_method": card.id, "trial_end": int(wall.time()) + 2})
    assert sub.status == "trialing"
    # No API request from here on: only the background loop can end the trial.
    deadline = wall.monotonic() + 15
    status = "trialing"
    while status == "trialing" and wall.monotonic() < deadline:
        wall.sleep(0.5)
        with sqlite3.connect(running.db) as connection:
            status = connection.execute(
                "SELECT json_extract(body, '$.status') FROM objects WHERE id = ?", (sub.id,)
            ).fetchone()[0]
        connection.close()
    assert status == "active"


def _events_of(client, event_type: str) -> list:
    """Return the events of one type, oldest first."""
    return list(reversed(client.v1.events.list(params={"type": event_type, "limit": 100}).data))


@pytest.mark.parametrize("card", ["pm_card_visa", "pm_card_chargeCustomerFail"])
def test_created_event_names_the_first_invoice(stripe_client, card):
    """docs.stripe.com/api/events/object: an event carries its object as it was when the event
    happened; a new subscription already has its first invoice (docs.stripe.com/billing/
    subscriptions/overview#subscription-lifecycle), and a later change that leaves
    latest_invoice alone does not list it in previous_attributes."""
    cus = customer(stripe_client, card)
    sub = subscribe(stripe_client, cus, price(stripe_client, 1500))
    created = _events_of(stripe_client, "customer.subscription.created")[-1]
    assert created.data.object.latest_invoice == sub.latest_invoice is not None
    assert created.data.object.status == "incomplete"
    for updated in _events_of(stripe_client, "customer.subscription.updated"):
        assert "latest_invoice" not in updated.data.previous_attributes
