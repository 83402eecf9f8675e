"""The Usage page follows the subscription's billing period as the mirror knows it: across a
test-clock renewal, a plan change within the interval and a change of interval.

Stripe docs: billing/testing/test-clocks (advancing a clock renews the subscription),
billing/subscriptions/billing-cycle (changing to a price of another interval resets the
billing cycle anchor to the time of the change; the same interval keeps it).
"""
from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta

from portal.extensions import db
from portal.models import Subscription
from portal.services.catalog_sync import sync_catalog
from tests.invoice_support import deliver_all
from tests.test_billing_emails import clock_customer, price_id
from tests.usage_support import event, new_key, post_usage

DAY = 86_400


def card_figures(page: str, meter: str) -> dict:
    """Return the used, included and projected figures of one meter card."""
    card = page[page.index(f'id="meter-{meter}"'):]
    card = card[:card.index("</article>")]
    used = int(re.search(r'data-used="(\d+)"', card).group(1))
    included = re.search(r"of ([\d,]+) ", card)
    return {"used": used, "included": int(included.group(1).replace(",", "")) if included
            else 0}


def period_line(page: str) -> str:
    return re.search(r'<p class="muted" id="usage-period">(.*?)</p>', page, re.S).group(1)


def day(moment: int) -> str:
    return time.strftime("%d %b %Y", time.gmtime(moment))


def test_a_test_clock_renewal_moves_the_page_to_the_new_period(
        app, client, stripe_api, make_user, login, deliver_webhooks):
    sync_catalog()
    user = make_user()
    now = int(time.time())
    clock = stripe_api.v1.test_helpers.test_clocks.create(params={"frozen_time": now - 40 * DAY})
    customer_id = clock_customer(stripe_api, user.account, clock.id)
    subscription = stripe_api.v1.subscriptions.create(params={
        "customer": customer_id, "items": [{"price": price_id(stripe_api, "starter_month")}]})
    deliver_all(deliver_webhooks)
    first_start = subscription["items"].data[0].current_period_start
    first_end = subscription["items"].data[0].current_period_end
    assert first_end < now - 5 * DAY  # the first period is over in wall-clock time
    secret = new_key(user.account)
    at = datetime.fromtimestamp(first_end, UTC)
    post_usage(client, secret, {"events": [
        event("old-period", 700, at=at - timedelta(days=1)),
        event("new-period", 25, at=at + timedelta(days=2))]})
    login(user)
    before = client.get("/billing/usage").get_data(as_text=True)
    assert f"{day(first_start)} – {day(first_end)}" in period_line(before)
    assert card_figures(before, "api_calls") == {"used": 700, "included": 50000}

    stripe_api.v1.test_helpers.test_clocks.advance(clock.id, params={
        "frozen_time": first_end + 3600})
    deliver_all(deliver_webhooks)
    db.session.expire_all()
    mirrored = db.session.scalar(db.select(Subscription))
    assert mirrored.current_period_start == datetime.fromtimestamp(first_end, UTC)
    after = client.get("/billing/usage").get_data(as_text=True)
    assert f"{day(first_end)} –" in period_line(after)
    assert card_figures(after, "api_calls") == {"used": 25, "included": 50000}
    # The chart sets the renewed period beside the one that just ended.
    chart = after[after.index('id="chart-api_calls"'):after.index('id="chart-storage_gb"')]
    assert "700" in chart and '<rect class="bar previous"' in chart


def test_plan_and_interval_changes_move_the_included_amounts_and_the_period(
        app, client, stripe_api, make_user, login, deliver_webhooks):
    sync_catalog()
    user = make_user()
    now = int(time.time())
    clock = stripe_api.v1.test_helpers.test_clocks.create(params={"frozen_time": now - 10 * DAY})
    customer_id = clock_customer(stripe_api, user.account, clock.id)
    subscription = stripe_api.v1.subscriptions.create(params={
        "customer": customer_id, "items": [{"price": price_id(stripe_api, "starter_month")}]})
    deliver_all(deliver_webhooks)
    start = subscription["items"].data[0].current_period_start
    secret = new_key(user.account)
    post_usage(client, secret, event("early", 5000, at=datetime.now(UTC) - timedelta(days=5)))
    login(user)
    page = client.get("/billing/usage").get_data(as_text=True)
    assert card_figures(page, "api_calls") == {"used": 5000, "included": 50000}

    # Same interval (Starter to Pro, monthly): the period stays, the included amount changes.
    stripe_api.v1.test_helpers.test_clocks.advance(clock.id, params={"frozen_time": now - 7200})
    item_id = subscription["items"].data[0].id
    stripe_api.v1.subscriptions.update(subscription.id, params={
        "items": [{"id": item_id, "price": price_id(stripe_api, "pro_month")}]})
    deliver_all(deliver_webhooks)
    page = client.get("/billing/usage").get_data(as_text=True)
    assert day(start) in period_line(page) and "Pro plan" in period_line(page)
    assert card_figures(page, "api_calls") == {"used": 5000, "included": 500000}

    # Another interval (Pro yearly): the period restarts at the change, with a year included.
    stripe_api.v1.test_helpers.test_clocks.advance(clock.id, params={"frozen_time": now - 3600})
    stripe_api.v1.subscriptions.update(subscription.id, params={
        "items": [{"id": item_id, "price": price_id(stripe_api, "pro_year")}]})
    deliver_all(deliver_webhooks)
    db.session.expire_all()
    mirrored = db.session.scalar(db.select(Subscription))
    assert mirrored.current_period_start == datetime.fromtimestamp(now - 3600, UTC)
    assert mirrored.current_period_end - mirrored.current_period_start >= timedelta(days=365)
    post_usage(client, secret, event("after-change", 40, at=datetime.now(UTC)))
    page = client.get("/billing/usage").get_data(as_text=True)
    assert f"{day(now - 3600)} –" in period_line(page)
    assert card_figures(page, "api_calls") == {"used": 40, "included": 12 * 500000}
