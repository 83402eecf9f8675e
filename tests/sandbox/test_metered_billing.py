"""Metered prices billed as Stripe documents: tiers with flat amounts, aggregation formulas,
identifier dedup, and usage arriving around a period's end."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import stripe

from tests.sandbox.billing_helpers import customer, price, subscribe
from tests.sandbox.test_meters import meter, report

START = int(datetime(2026, 6, 1, tzinfo=UTC).timestamp())
HOUR = 3600
FLAT_TIERS = [
    {"up_to": 1000, "flat_amount": 500, "unit_amount": 0},
    {"up_to": "inf", "unit_amount": 2},
]


def metered_subscription(client, formula="sum", tiers=None, **price_params):
    """Return (clock, customer, subscription, period_end) for one metered price on a clock."""
    m = meter(client, formula=formula)
    if tiers is not None:
        price_params.update(billing_scheme="tiered", tiers_mode="graduated", tiers=tiers)
    else:
        price_params.setdefault("unit_amount", 25)
    metered = price(client, name="API calls",
                    recurring={"usage_type": "metered", "meter": m.id}, **price_params)
    clock = client.v1.test_helpers.test_clocks.create(params={"frozen_time": START})
    cus = customer(client, test_clock=clock.id)
    sub = subscribe(client, cus, metered)
    return clock, cus, sub, sub["items"].data[0].current_period_end


def advance(client, clock, to):
    client.v1.test_helpers.test_clocks.advance(clock.id, params={"frozen_time": to})


def invoices(client, sub):
    """Return the subscription's invoices, oldest first."""
    return list(reversed(client.v1.invoices.list(params={"subscription": sub.id}).data))


@pytest.mark.parametrize("used,expected", [(0, 500), (400, 500), (1500, 500 + 500 * 2)])
def test_flat_first_tier_is_billed_even_without_usage(stripe_client, used, expected):
    """docs.stripe.com/subscriptions/pricing-models/tiered-pricing (flat rates with tiers):
    a graduated metered price's first tier flat amount is a base fee, due at zero usage too;
    units above the tier are added at the next tier's rate."""
    clock, cus, sub, period_end = metered_subscription(stripe_client, tiers=FLAT_TIERS)
    advance(stripe_client, clock, START + 2 * HOUR)
    if used:
        report(stripe_client, cus, "api_calls", used, START + HOUR)
    advance(stripe_client, clock, period_end + 2 * HOUR)
    renewal = invoices(stripe_client, sub)[-1]
    line = renewal.lines.data[0]
    assert renewal.billing_reason == "subscription_cycle"
    assert (line.quantity, line.amount) == (used, expected)
    assert renewal.status == "paid" and renewal.amount_paid == expected


@pytest.mark.parametrize("formula,expected", [("sum", 9 + 2 + 5), ("count", 3), ("last", 2)])
def test_aggregation_formulas_over_the_period(stripe_client, formula, expected):
    """docs.stripe.com/billing/subscriptions/usage-based/meters/configure (aggregation
    formula): sum adds the values, count counts the events, last takes the most recent event
    by its timestamp (not by arrival); the meter event summary for the period shows the same."""
    clock, cus, sub, period_end = metered_subscription(stripe_client, formula=formula)
    advance(stripe_client, clock, START + 5 * HOUR)
    # Sent out of order: the event with the latest timestamp (value 2) arrives second.
    for value, at in ((9, START + HOUR), (2, START + 4 * HOUR), (5, START + 2 * HOUR)):
        report(stripe_client, cus, "api_calls", value, at)
    m = stripe_client.v1.billing.meters.list().data[0]
    summary = stripe_client.v1.billing.meters.event_summaries.list(m.id, params={
        "customer": cus.id, "start_time": START, "end_time": START + 5 * HOUR})
    assert [s.aggregated_value for s in summary.data] == [expected]
    advance(stripe_client, clock, period_end + 2 * HOUR)
    line = invoices(stripe_client, sub)[-1].lines.data[0]
    assert (line.quantity, line.amount) == (expected, expected * 25)


def test_an_identifier_is_counted_once(stripe_client):
    """docs.stripe.com/api/billing/meter-event/create (identifier): a unique identifier per
    event; a second event with the same identifier is refused and changes no aggregate."""
    clock, cus, sub, period_end = metered_subscription(stripe_client)
    advance(stripe_client, clock, START + 3 * HOUR)
    report(stripe_client, cus, "api_calls", 7, START + HOUR, identifier="window-1")
    with pytest.raises(stripe.InvalidRequestError) as refused:
        report(stripe_client, cus, "api_calls", 7, START + HOUR, identifier="window-1")
    assert "already exists with identifier window-1" in refused.value.user_message
    report(stripe_client, cus, "api_calls", 3, START + HOUR, identifier="window-1-c1")
    advance(stripe_client, clock, period_end + 2 * HOUR)
    assert invoices(stripe_client, sub)[-1].lines.data[0].quantity == 10


def test_usage_reported_in_the_grace_hour_reaches_the_closing_invoice(stripe_client):
    """docs.stripe.com/billing/subscriptions/usage-based/configure-grace-period: drafts
    finalize after a one-hour grace period during which usage for the previous period can
    still be reported; at finalization the invoice takes the latest quantity."""
    clock, cus, sub, period_end = metered_subscription(stripe_client)
    advance(stripe_client, clock, START + 2 * HOUR)
    report(stripe_client, cus, "api_calls", 4, START + HOUR)
    advance(stripe_client, clock, period_end + 10 * 60)
    draft = invoices(stripe_client, sub)[-1]
    assert draft.status == "draft" and draft.lines.data[0].quantity == 4
    report(stripe_client, cus, "api_calls", 6, period_end - 60)
    advance(stripe_client, clock, period_end + 2 * HOUR)
    final = stripe_client.v1.invoices.retrieve(draft.id)
    assert final.status == "paid"
    assert (final.lines.data[0].quantity, final.amount_paid) == (10, 10 * 25)


def test_late_usage_after_finalization_falls_into_the_next_period(stripe_client):
    """docs.stripe.com/billing/subscriptions/usage-based/configure-grace-period: once the
    invoice is finalized its quantities are fixed; usage sent with a timestamp in the new
    period (as the portal sends late corrections) is billed on the next period's invoice."""
    clock, cus, sub, period_end = metered_subscription(stripe_client)
    advance(stripe_client, clock, START + 2 * HOUR)
    report(stripe_client, cus, "api_calls", 4, START + HOUR)
    advance(stripe_client, clock, period_end + 2 * HOUR)
    closed = invoices(stripe_client, sub)[-1]
    assert closed.status == "paid" and closed.lines.data[0].quantity == 4
    # Late: a correction for the closed period, sent into the current one.
    report(stripe_client, cus, "api_calls", 3, period_end + HOUR, identifier="late-c1")
    # An event stamped in the closed period after finalization changes nothing there.
    report(stripe_client, cus, "api_calls", 100, period_end - 60, identifier="too-late")
    assert stripe_client.v1.invoices.retrieve(closed.id).lines.data[0].quantity == 4
    next_end = stripe_client.v1.subscriptions.retrieve(sub.id)["items"].data[0].current_period_end
    advance(stripe_client, clock, next_end + 2 * HOUR)
    renewal = invoices(stripe_client, sub)[-1]
    assert renewal.id != closed.id
    assert (renewal.period_start, renewal.period_end) == (period_end, next_end)
    assert renewal.lines.data[0].quantity == 3
