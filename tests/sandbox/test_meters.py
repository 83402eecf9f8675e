"""Billing meters, meter events, summaries, and metered prices turning usage into invoice lines."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import stripe

from tests.sandbox.billing_helpers import customer, event_types, fixture_keys, price, subscribe

START = int(datetime(2026, 5, 1, tzinfo=UTC).timestamp())
HOUR = 3600


def meter(client, formula="sum", event_name="api_calls"):
    return client.v1.billing.meters.create(
        params={
            "display_name": event_name.replace("_", " ").title(),
            "event_name": event_name,
            "default_aggregation": {"formula": formula},
            "customer_mapping": {"type": "by_id", "event_payload_key": "stripe_customer_id"},
            "value_settings": {"event_payload_key": "value"},
        }
    )


def report(client, cus, event_name, value, timestamp, identifier=None):
    params = {
        "event_name": event_name,
        "timestamp": timestamp,
        "payload": {"stripe_customer_id": cus.id, "value": str(value)},
    }
    if identifier:
        params["identifier"] = identifier
    return client.v1.billing.meter_events.create(params=params)


def test_meter_lifecycle_and_shapes(stripe_client):
    """docs.stripe.com/api/billing/meter: create, rename, deactivate, reactivate, list."""
    m = meter(stripe_client)
    assert set(m.to_dict()) == fixture_keys("billing.meter")
    assert (m.status, m.default_aggregation.formula) == ("active", "sum")
    assert "billing.meter.created" in event_types(stripe_client, ("billing.meter",))
    renamed = stripe_client.v1.billing.meters.update(m.id, params={"display_name": "Calls"})
    assert renamed.display_name == "Calls"
    inactive = stripe_client.v1.billing.meters.deactivate(m.id)
    assert inactive.status == "inactive" and inactive.status_transitions.deactivated_at
    assert stripe_client.v1.billing.meters.reactivate(m.id).status == "active"
    assert [x.id for x in stripe_client.v1.billing.meters.list().data] == [m.id]
    with pytest.raises(stripe.InvalidRequestError):
        meter(stripe_client)  # event_name already used


def test_meter_event_identifier_is_idempotent(stripe_client):
    """docs.stripe.com/api/billing/meter-event/create: identifiers are unique per event."""
    meter(stripe_client)
    cus = customer(stripe_client)
    now = int(datetime.now(UTC).timestamp())
    event = report(stripe_client, cus, "api_calls", 5, now, identifier="req-1")
    assert set(event.to_dict()) == fixture_keys("billing.meter_event")
    assert (event.identifier, event.payload["value"]) == ("req-1", "5")
    with pytest.raises(stripe.InvalidRequestError) as caught:
        report(stripe_client, cus, "api_calls", 5, now, identifier="req-1")
    assert caught.value.http_status == 400
    assert "An event already exists with identifier req-1" in caught.value.user_message
    generated = report(stripe_client, cus, "api_calls", 1, now)
    assert generated.identifier and generated.identifier != "req-1"


def test_event_summaries_by_window(stripe_client):
    """docs.stripe.com/api/billing/meter-event-summary/list: totals, or per hour windows."""
    m = meter(stripe_client)
    clock = stripe_client.v1.test_helpers.test_clocks.create(
        params={"frozen_time": START + 3 * HOUR}
    )
    cus = customer(stripe_client, test_clock=clock.id)
    for value, at in ((2, START + 60), (3, START + 120), (10, START + HOUR + 5)):
        report(stripe_client, cus, "api_calls", value, at)
    whole = stripe_client.v1.billing.meters.event_summaries.list(
        m.id, params={"customer": cus.id, "start_time": START, "end_time": START + 2 * HOUR}
    )
    assert [s.aggregated_value for s in whole.data] == [15]
    assert set(whole.data[0].to_dict()) == fixture_keys("billing.meter_event_summary")
    hourly = stripe_client.v1.billing.meters.event_summaries.list(
        m.id,
        params={
            "customer": cus.id,
            "start_time": START,
            "end_time": START + 2 * HOUR,
            "value_grouping_window": "hour",
        },
    )
    assert [(s.start_time, s.aggregated_value) for s in hourly.data] == [
        (START + HOUR, 10),
        (START, 5),
    ]
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.billing.meters.event_summaries.list(
            m.id, params={"customer": cus.id, "start_time": START + 1, "end_time": START + HOUR}
        )


@pytest.mark.parametrize("formula,expected", [("sum", 17), ("last", 4), ("count", 3)])
def test_metered_usage_becomes_the_renewal_line(stripe_client, formula, expected):
    """docs.stripe.com/billing/subscriptions/usage-based/meters/configure: the period's
    aggregate is billed in arrears on the renewal invoice."""
    m = meter(stripe_client, formula=formula)
    metered = price(
        stripe_client, 25, name="API calls", recurring={"usage_type": "metered", "meter": m.id}
    )
    clock = stripe_client.v1.test_helpers.test_clocks.create(params={"frozen_time": START})
    cus = customer(stripe_client, test_clock=clock.id)
    sub = subscribe(stripe_client, cus, metered)
    assert sub.status == "active"
    period_end = sub["items"].data[0].current_period_end
    stripe_client.v1.test_helpers.test_clocks.advance(
        clock.id, params={"frozen_time": START + 4 * HOUR}
    )
    for value, offset in ((5, HOUR), (8, 2 * HOUR), (4, 3 * HOUR)):
        report(stripe_client, cus, "api_calls", value, START + offset)
    stripe_client.v1.test_helpers.test_clocks.advance(
        clock.id, params={"frozen_time": period_end + 2 * HOUR}
    )
    invoice = stripe_client.v1.invoices.list(params={"subscription": sub.id}).data[0]
    line = invoice.lines.data[0]
    assert invoice.billing_reason == "subscription_cycle"
    assert (line.quantity, line.amount) == (expected, expected * 25)
    assert (line.period.start, line.period.end) == (START, period_end)
    assert invoice.status == "paid" and invoice.amount_paid == expected * 25
