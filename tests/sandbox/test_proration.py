"""Proration: an update's preview equals what the update bills with the same proration_date."""

from __future__ import annotations

import pytest
import stripe

from tests.sandbox.billing_helpers import customer, price, subscribe


def _proration_lines(invoice):
    return [
        (line.description, line.amount, line.period.start, line.period.end)
        for line in invoice.lines.data
        if line.parent.subscription_item_details and line.parent.subscription_item_details.proration
    ]


def test_preview_matches_always_invoice_update(stripe_client):
    basic, pro = price(stripe_client, 1000, name="Basic"), price(stripe_client, 2500, name="Pro")
    cus = customer(stripe_client)
    sub = subscribe(stripe_client, cus, basic)
    item = sub["items"].data[0]
    when = item.current_period_start + (item.current_period_end - item.current_period_start) // 3
    change = {
        "items": [{"id": item.id, "price": pro.id}],
        "proration_behavior": "always_invoice",
        "proration_date": when,
    }
    preview = stripe_client.v1.invoices.create_preview(
        params={"customer": cus.id, "subscription": sub.id, "subscription_details": change}
    )
    assert preview.id.startswith("upcoming_in_")
    expected = _proration_lines(preview)
    assert [amount for _, amount, _, _ in expected][0] < 0 < expected[1][1]
    updated = stripe_client.v1.subscriptions.update(
        sub.id, params={**change, "expand": ["latest_invoice"]}
    )
    invoice = updated.latest_invoice
    assert invoice.billing_reason == "subscription_update"
    assert invoice.status == "paid"
    assert _proration_lines(invoice) == expected
    assert invoice.total == preview.total == sum(amount for _, amount, _, _ in expected)
    assert updated["items"].data[0].price.id == pro.id


def test_preview_of_next_invoice_with_create_prorations(stripe_client):
    basic, pro = price(stripe_client, 1000, name="Basic"), price(stripe_client, 2000, name="Pro")
    cus = customer(stripe_client)
    sub = subscribe(stripe_client, cus, basic)
    item = sub["items"].data[0]
    when = item.current_period_start + (item.current_period_end - item.current_period_start) // 2
    details = {"items": [{"id": item.id, "price": pro.id, "quantity": 2}], "proration_date": when}
    preview = stripe_client.v1.invoices.create_preview(
        params={"subscription": sub.id, "subscription_details": details}
    )
    assert preview.billing_reason == "upcoming"
    lines = _proration_lines(preview)
    assert [amount for _, amount, _, _ in lines] == [-500, 2000]
    assert lines[1][0].startswith("Remaining time on 2 × Pro after ")
    renewal = [ln for ln in preview.lines.data if ln.period.start == item.current_period_end]
    assert renewal[0].amount == 4000 and renewal[0].quantity == 2
    stripe_client.v1.subscriptions.update(
        sub.id, params={"items": details["items"], "proration_date": when}
    )
    pending = stripe_client.v1.invoice_items.list(params={"customer": cus.id, "pending": True})
    assert sorted(ii.amount for ii in pending.data) == [-500, 2000]
    assert all(ii.proration for ii in pending.data)
    upcoming = stripe_client.v1.invoices.create_preview(params={"subscription": sub.id})
    assert _proration_lines(upcoming) == lines


def test_proration_none_bills_nothing(stripe_client):
    cus = customer(stripe_client)
    sub = subscribe(stripe_client, cus, price(stripe_client, 1000))
    stripe_client.v1.subscriptions.update(
        sub.id,
        params={
            "items": [{"id": sub["items"].data[0].id, "quantity": 3}],
            "proration_behavior": "none",
        },
    )
    assert stripe_client.v1.invoice_items.list(params={"customer": cus.id}).data == []
    assert stripe_client.v1.subscriptions.retrieve(sub.id)["items"].data[0].quantity == 3


def test_proration_date_outside_period_is_refused(stripe_client):
    cus = customer(stripe_client)
    sub = subscribe(stripe_client, cus, price(stripe_client, 1000))
    with pytest.raises(stripe.InvalidRequestError) as caught:
        stripe_client.v1.subscriptions.update(
            sub.id,
            params={
                "items": [{"id": sub["items"].data[0].id, "quantity": 2}],
                "proration_date": sub.start_date - 86_400,
            },
        )
    assert caught.value.param == "proration_date"
