"""Usage billed on Stripe's renewal invoice: across a plan change and a test-clock renewal the
usage stays in its period, the overage line equals the portal's own figure, and a late event
for an invoiced period is billed in the next one."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from portal.extensions import db
from portal.models import Price, UsageReport
from portal.services.catalog_sync import sync_catalog
from portal.services.plan_changes import change_plan, proration_preview
from portal.services.subscriptions import live_subscription
from portal.services.usage_reconcile import reconcile_usage
from portal.services.usage_reporting import report_usage
from portal.services.usage_summary import period_usage
from tests.usage_billing_support import HOUR, advance, now, on_clock, subscribe
from tests.usage_support import event, new_key, post_usage


def at(timestamp: int) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)


def overage_amount(lookup_key: str, units: int) -> int:
    """Return what `units` above the included amount cost at a catalog overage price."""
    price = db.session.scalar(db.select(Price).where(Price.lookup_key == lookup_key))
    exact = Decimal(units) * Decimal(price.overage_unit_amount_decimal)
    return int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def metered_lines(invoice) -> dict[str, tuple[int, int]]:
    """Return {lookup_key: (quantity, amount)} of an invoice's metered lines."""
    keys = {}
    for line in invoice.lines.data:
        price_id = line.pricing.price_details.price
        price = db.session.scalar(db.select(Price).where(Price.stripe_price_id == price_id))
        if price.usage_type == "metered":
            keys[price.lookup_key] = (line.quantity, line.amount)
    return keys


def test_renewal_overage_equals_the_portal_figure_across_a_plan_change(
        app, client, stripe_api, make_user, deliver_webhooks):
    sync_catalog()
    user = make_user()
    t0 = now()
    clock, customer = on_clock(stripe_api, user, t0 - 3 * HOUR)
    created = subscribe(stripe_api, customer.id, "starter_month")
    period_end = created["items"].data[0].current_period_end
    advance(stripe_api, clock, t0, deliver_webhooks)
    key = new_key(user.account)

    def ingest(*events):
        assert post_usage(client, key, {"events": list(events)}).get_json()["accepted"] \
            == len(events)

    # Usage on Starter, then a change to Pro in the same period, then more usage.
    # Whole hours before t0's own, so the late event below falls in the same hour.
    hour_1 = t0 - t0 % HOUR - 2 * HOUR
    ingest(event("calls-1", 300_000, at=at(hour_1 + 60)),
           event("storage-1", 12, meter="storage_gb", at=at(hour_1 + 600)))
    with app.test_request_context("/"):
        preview = proration_preview(user.account, "pro_month")
        assert change_plan(user.account, "pro_month", preview.proration_date).applied
    deliver_webhooks()
    db.session.expire_all()
    period = live_subscription(user.account)
    # A change within the interval keeps the period: all of it is one period's usage.
    assert period.current_period_end == at(period_end)
    ingest(event("calls-2", 320_000, at=at(t0)),
           event("storage-2", 130, meter="storage_gb", at=at(t0)))

    # Two hours on, every hour with usage is closed and reported.
    advance(stripe_api, clock, t0 + 2 * HOUR, deliver_webhooks)
    closing = datetime.now(UTC) + timedelta(hours=2)
    assert report_usage(now=closing).failed == 0
    assert reconcile_usage() == []
    summary_period, meters = period_usage(user.account_id, now=closing)
    assert (summary_period.plan_key, summary_period.end) == ("pro", at(period_end))
    usage = {meter.meter: meter for meter in meters}
    assert (usage["api_calls"].used, usage["api_calls"].overage) == (620_000, 120_000)
    assert (usage["storage_gb"].used, usage["storage_gb"].overage) == (130, 30)
    expected = {
        "pro_api_calls_month": (620_000, overage_amount("pro_api_calls_month", 120_000)),
        "pro_storage_gb_month": (130, overage_amount("pro_storage_gb_month", 30)),
        "pro_seats_month": (0, 0),
    }
    assert expected["pro_api_calls_month"][1] == 12_000  # 120,000 calls at 0.1 cent

    # The renewal: past the period end and its one-hour grace period.
    advance(stripe_api, clock, period_end + 2 * HOUR, deliver_webhooks)
    renewal = stripe_api.v1.invoices.list(params={"subscription": created.id}).data[0]
    assert renewal.billing_reason == "subscription_cycle"
    assert (renewal.period_start, renewal.period_end) == (t0 - 3 * HOUR, period_end)
    assert metered_lines(renewal) == expected
    assert renewal.status == "paid"
    assert renewal.total == 4900 + sum(amount for _, amount in expected.values())

    # The new period starts empty: the usage stayed with the period it happened in.
    db.session.expire_all()
    renewed = live_subscription(user.account)
    assert renewed.current_period_start == at(period_end)
    _period, fresh = period_usage(user.account_id, now=renewed.current_period_start)
    assert {meter.meter: meter.used for meter in fresh} == {
        "api_calls": 0, "storage_gb": 0, "seats": 0}

    # A late event for the invoiced period is reported into the current one, not lost.
    ingest(event("calls-late", 1_000, at=at(hour_1 + 120)))
    run = report_usage(now=closing)
    assert (run.sent, run.corrections, run.moved) == (1, 1, 1)
    late = db.session.scalars(db.select(UsageReport).order_by(UsageReport.id.desc())).first()
    assert (late.value, late.event_timestamp) == (1_000, at(period_end))
    assert reconcile_usage() == []
    next_end = stripe_api.v1.subscriptions.retrieve(created.id)["items"].data[0] \
        .current_period_end
    advance(stripe_api, clock, next_end + 2 * HOUR, deliver_webhooks)
    following = stripe_api.v1.invoices.list(params={"subscription": created.id}).data[0]
    assert following.id != renewal.id
    assert metered_lines(following)["pro_api_calls_month"] == (1_000, 0)


def test_the_hour_holding_a_period_end_counts_in_the_next_period(app):
    """Stripe periods start mid-hour; each hour counts in the period holding its last second,
    where report-usage stamps its meter event, so summary and invoice never disagree."""
    from portal.models import ApiKey
    from portal.services.catalog import seed_plans
    from portal.services.usage import record_usage
    from tests import factories

    seed_plans()
    account = factories.make_account()
    new_key(account)
    api_key = db.session.scalar(db.select(ApiKey).where(ApiKey.account_id == account.id))
    boundary = datetime(2026, 3, 31, 10, 37, 12, tzinfo=UTC)
    old = factories.make_subscription(account, current_period_start=boundary - timedelta(days=30),
                                      current_period_end=boundary)
    record_usage(account.id, api_key.id, None, [
        event("before", 100, at=boundary - timedelta(hours=1)),   # hour 09:00: old period
        event("last-bit", 7, at=boundary - timedelta(minutes=10)),  # hour 10:00: next period
        event("after", 20, at=boundary + timedelta(minutes=5))], now=boundary)
    _period, meters = period_usage(account.id, now=boundary - timedelta(minutes=1))
    assert next(m.used for m in meters if m.meter == "api_calls") == 100
    old.current_period_start, old.current_period_end = boundary, boundary + timedelta(days=30)
    db.session.commit()
    _period, meters = period_usage(account.id, now=boundary + timedelta(minutes=30))
    assert next(m.used for m in meters if m.meter == "api_calls") == 27
