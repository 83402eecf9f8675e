"""GET /api/v1/usage/summary: the current period per meter, figures worked out by hand."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from portal.extensions import db
from portal.models import ApiKey, Price
from portal.services.catalog import seed_plans
from portal.services.usage import record_usage
from portal.services.usage_summary import period_usage
from tests import factories
from tests.usage_support import assert_matches, event, new_key, post_usage

DAY = 86400


def starter_subscription(account, start: datetime):
    """Give the account a live monthly Starter subscription whose period began at `start`."""
    seed_plans()
    price = db.session.scalar(db.select(Price).where(Price.lookup_key == "starter_month"))
    price.stripe_price_id = "price_starter_month_test"
    db.session.commit()
    return factories.make_subscription(account, stripe_price_id=price.stripe_price_id,
                                       current_period_start=start,
                                       current_period_end=start + timedelta(days=30))


def test_summary_counts_the_subscription_period_against_the_plan(client):
    account = factories.make_account()
    now = datetime.now(UTC)
    start = now.replace(minute=0, second=0, microsecond=0) - timedelta(days=10)
    starter_subscription(account, start)
    secret = new_key(account)
    events = [
        event("before-period", 7000, at=start - timedelta(hours=1)),
        event("calls-1", 25000, at=start + timedelta(hours=2)),
        event("calls-2", 25000, at=now - timedelta(days=1)),
        event("calls-3", 10000, at=now - timedelta(minutes=1)),
        event("storage-1", 4, meter="storage_gb", at=now - timedelta(days=2)),
        event("storage-2", 12, meter="storage_gb", at=now - timedelta(days=1)),
        # Sent last but measured earlier: a `last` meter keeps the latest measurement (12).
        event("storage-3", 8, meter="storage_gb", at=now - timedelta(days=3)),
    ]
    assert post_usage(client, secret, {"events": events}).get_json()["accepted"] == 7
    before = datetime.now(UTC)
    response = client.get("/api/v1/usage/summary", headers={"Authorization": f"Bearer {secret}"})
    after = datetime.now(UTC)
    assert response.status_code == 200
    body = response.get_json()
    assert_matches(client, "UsageSummary", body)
    assert body["plan"] == "starter"
    assert body["period"]["source"] == "subscription"
    assert body["period"]["start"] == start.isoformat().replace("+00:00", "Z")
    meters = {meter["meter"]: meter for meter in body["meters"]}
    calls = meters["api_calls"]
    # Starter includes 50,000 calls a month; 25,000 + 25,000 + 10,000 were used in the period.
    assert (calls["used"], calls["included"], calls["overage"]) == (60000, 50000, 10000)
    # 60,000 in about 10 days, over a 30-day period: about 180,000.
    length = 30 * DAY
    slowest = 60000 * length // (after - start).total_seconds()
    fastest = 60000 * length // (before - start).total_seconds()
    assert slowest <= calls["projected"] <= fastest
    assert 179000 < calls["projected"] <= 180000
    storage = meters["storage_gb"]
    assert (storage["used"], storage["included"], storage["overage"], storage["projected"]) \
        == (12, 10, 2, 12)
    assert (meters["seats"]["used"], meters["seats"]["included"]) == (0, 3)


def test_projection_is_linear_on_the_time_elapsed(app):
    account = factories.make_account()
    start = datetime(2026, 3, 1, tzinfo=UTC)
    starter_subscription(account, start)
    new_key(account)
    api_key = db.session.scalar(db.select(ApiKey).where(ApiKey.account_id == account.id))
    day_six = start + timedelta(days=6)
    record_usage(account.id, api_key.id, None,
                 [event("a", 1200, at=start + timedelta(days=1)),
                  event("b", 800, at=start + timedelta(days=5))], now=day_six)
    _period, meters = period_usage(account.id, now=day_six)
    calls = next(meter for meter in meters if meter.meter == "api_calls")
    # 2,000 calls in 6 of 30 days: 2,000 / 6 * 30 = 10,000.
    assert (calls.used, calls.included, calls.overage, calls.projected) == (2000, 50000, 0, 10000)


def test_without_a_subscription_the_period_is_the_calendar_month(client):
    account = factories.make_account()
    secret = new_key(account)
    now = datetime.now(UTC)
    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    post_usage(client, secret, {"events": [
        event("this-month", 5, at=max(month_start, now - timedelta(minutes=1))),
        event("last-month", 9, at=month_start - timedelta(hours=2))]})
    body = client.get("/api/v1/usage/summary",
                      headers={"Authorization": f"Bearer {secret}"}).get_json()
    assert_matches(client, "UsageSummary", body)
    assert body["period"]["source"] == "calendar_month"
    assert body["period"]["start"] == month_start.isoformat().replace("+00:00", "Z")
    assert body["plan"] is None
    calls = next(meter for meter in body["meters"] if meter["meter"] == "api_calls")
    assert (calls["used"], calls["included"], calls["overage"]) == (5, 0, 5)
