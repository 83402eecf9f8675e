"""The Usage page: meters against the plan, overage and its price, the linear projection, the
projected invoice, the htmx partial, the daily chart, and zero Stripe calls; figures by hand."""
from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from portal.extensions import db
from portal.models import Account, ApiKey
from portal.services.usage import record_usage
from portal.services.usage_page import daily_usage, overage_cost, usage_overview
from tests.test_usage_summary import starter_subscription
from tests.usage_support import event, new_key, post_usage


def api_key_id(account) -> int:
    return db.session.scalar(db.select(ApiKey.id).where(ApiKey.account_id == account.id))


def test_overview_figures_worked_out_by_hand(app, make_user):
    account = make_user().account
    start = datetime(2026, 3, 1, tzinfo=UTC)
    starter_subscription(account, start)
    new_key(account)
    day_ten = start + timedelta(days=10)
    record_usage(account.id, api_key_id(account), None, [
        event("a", 40000, at=start + timedelta(days=2, hours=3)),
        event("b", 20000, at=start + timedelta(days=9)),
        event("disk", 12, meter="storage_gb", at=start + timedelta(days=4))], now=day_ten)
    overview = usage_overview(db.session.get(Account, account.id), now=day_ten)
    cards = {card.usage.meter: card for card in overview.cards}
    calls = cards["api_calls"]
    # Starter: 50,000 calls included, overage 0.2 cents a call.
    assert (calls.usage.used, calls.usage.included, calls.percent) == (60000, 50000, 120)
    assert calls.usage.overage == 10000 and calls.overage_amount == 2000  # $20.00
    # Linear on the days elapsed: 60,000 in 10 of 30 days -> 180,000; 130,000 over -> $260.
    assert calls.usage.projected == 180000
    assert (calls.projected_overage, calls.projected_overage_amount) == (130000, 26000)
    storage = cards["storage_gb"]
    # A `last` meter projects its latest value: 12 GB of 10 -> 2 GB over at 50 cents.
    assert (storage.usage.projected, storage.overage_amount, storage.projected_overage_amount) \
        == (12, 100, 100)
    assert cards["seats"].usage.used == 0 and cards["seats"].level == "ok"
    assert (calls.level, storage.level) == ("over", "over")
    # The plan's $19.00 plus the projected overage: 1900 + 26000 + 100.
    assert overview.currency == "usd"
    assert (overview.plan_amount, overview.projected_invoice) == (1900, 28000)
    assert (overview.days_elapsed, overview.days_in_period) == (10, 30)

    series = {daily.meter: daily for daily in daily_usage(account, overview)}
    calls_days = series["api_calls"].current
    assert len(calls_days) == 30 and calls_days[2] == 40000 and calls_days[9] == 20000
    assert sum(day for day in calls_days if day) == 60000
    assert calls_days[10] == 0 and calls_days[11] is None  # days to come are not zero
    assert series["storage_gb"].current[4] == 12


def test_daily_chart_sets_this_period_beside_the_previous_one(app, make_user):
    account = make_user().account
    start = datetime(2026, 3, 1, tzinfo=UTC)
    starter_subscription(account, start)
    new_key(account)
    now = start + timedelta(days=3)
    record_usage(account.id, api_key_id(account), None, [
        event("old-1", 70, at=start - timedelta(days=30) + timedelta(hours=5)),
        event("old-2", 30, at=start - timedelta(hours=2)),
        event("new-1", 5, at=start + timedelta(hours=1))], now=now)
    overview = usage_overview(account, now=now)
    calls = next(daily for daily in daily_usage(account, overview) if daily.meter == "api_calls")
    # The previous period is the 30 days just before: day 1 has 70, day 30 has 30.
    assert calls.previous[0] == 70 and calls.previous[29] == 30 and sum(calls.previous) == 100
    assert calls.current[:3] == [5, 0, 0] and calls.current[4] is None


def test_overage_cost_rounds_half_up_to_minor_units():
    assert overage_cost(0, "0.2") == 0
    assert overage_cost(7, "0.2") == 1  # 1.4 cents
    assert overage_cost(5, "0.5") == 3  # 2.5 cents
    assert overage_cost(100, None) == 0


def test_page_and_partial_show_meters_projection_chart_without_stripe_calls(
        app, client, make_user, login):
    user = make_user()
    account = user.account
    now = datetime.now(UTC)
    start = now - timedelta(days=10)
    starter_subscription(account, start)
    secret = new_key(account)
    answer = post_usage(client, secret, {"events": [
        event("calls-1", 30000, at=now - timedelta(days=2)),
        event("calls-2", 30000, at=now - timedelta(minutes=5)),
        event("disk", 4, meter="storage_gb", at=now - timedelta(hours=1))]})
    assert answer.get_json()["accepted"] == 3
    login(user)
    http = app.extensions["stripe_http_client"]
    before = http.requests_sent
    response = client.get("/billing/usage")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert http.requests_sent == before
    assert 'href="/billing/usage"' in page  # in the navigation
    card = page[page.index('id="meter-api_calls"'):page.index('id="meter-storage_gb"')]
    assert "60,000" in card and "of 50,000 API calls included (120%)" in card
    assert 'role="progressbar"' in card and 'aria-valuenow="100"' in card
    assert "10,000 API calls · $20.00" in card and "$0.002 per API call" in card
    projected = int(re.search(r'data-projected="(\d+)"', card).group(1))
    # About 60,000 in 10 of 30 days.
    assert 179000 < projected <= 180001
    invoice = int(re.search(r'data-projected-invoice="(\d+)"', page).group(1))
    assert invoice == 1900 + overage_cost(projected - 50000, "0.2") + 0
    assert "linear on the days elapsed" in page
    assert 'hx-get="/billing/usage/cards"' in page and 'hx-trigger="every 30s"' in page
    # The chart: inline SVG with a text alternative and the figures as a table.
    chart = page[page.index('id="chart-api_calls"'):page.index('id="chart-storage_gb"')]
    assert "<svg" in chart and 'role="img"' in chart and "<desc" in chart
    assert '<rect class="bar current"' in chart and "<table" in chart and "30,000" in chart
    assert "cdn" not in page.lower()

    partial = client.get("/billing/usage/cards", headers={"HX-Request": "true"})
    fragment = partial.get_data(as_text=True)
    assert partial.status_code == 200 and http.requests_sent == before
    assert 'id="usage-cards"' in fragment and 'id="meter-api_calls"' in fragment
    assert "<svg" not in fragment


def test_page_needs_a_signed_in_customer(client, make_user, login):
    assert client.get("/billing/usage").status_code == 302
    from portal.models import Role

    login(make_user(Role.ADMIN))
    assert client.get("/billing/usage").status_code == 403
    assert client.get("/billing/usage/cards").status_code == 403


def test_without_a_subscription_the_page_counts_the_calendar_month(client, make_user, login):
    user = make_user()
    secret = new_key(user.account)
    post_usage(client, secret, event("one", 7))
    login(user)
    page = client.get("/billing/usage").get_data(as_text=True)
    assert "calendar month, no subscription" in page
    assert "7 API calls" in page and "no plan, so nothing is included" in page
