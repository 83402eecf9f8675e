"""Webhook handlers ask Stripe only when the stored events cannot tell the newest state.

docs.stripe.com/webhooks#event-ordering: events arrive in any order and several about one
object share a second; docs.stripe.com/api/events/object: `previous_attributes` tells what a
change replaced. A copy fetched from Stripe is at least as new as every event sent before it
was asked for, and docs.stripe.com/api/invoice-payment/list lists payments without naming an
invoice, so a burst of renewals costs one list.
"""
from __future__ import annotations

from portal.extensions import db
from portal.models import MirrorFetch, Subscription, WebhookEvent
from portal.services import sync
from portal.services.stripe_client import stripe_client
from portal.services.webhooks import record_event, retry_failed_events
from tests.helpers import customer_with_card
from tests.test_mirror_order import differences, mirror_of_stripe_now, prices, snapshot, wipe
from tests.test_webhook_lifecycle import capture_deliveries, post_all

# Within the 100 deliveries the sandbox hands over at a time.
LIFECYCLES = 3


def stripe_calls(app) -> int:
    """Return how many requests the portal's Stripe client has sent."""
    return app.extensions["stripe_http_client"].requests_sent


def subscribe_change_refund_cancel(stripe_api, account, plans: tuple[str, str]) -> str:
    """Run one customer's lifecycle at Stripe (none of it through the portal); return the
    subscription id."""
    monthly, yearly = plans
    customer_with_card(stripe_api, account, "pm_card_visa")
    sub = stripe_api.v1.subscriptions.create(params={
        "customer": account.stripe_customer_id, "items": [{"price": monthly}]})
    stripe_api.v1.subscriptions.update(sub.id, params={
        "items": [{"id": sub["items"].data[0].id, "price": yearly}],
        "proration_behavior": "always_invoice"})
    charge = stripe_api.v1.charges.list(params={"customer": account.stripe_customer_id}).data[0]
    stripe_api.v1.refunds.create(params={"charge": charge.id, "amount": 500})
    stripe_api.v1.subscriptions.update(sub.id, params={"cancel_at_period_end": True})
    stripe_api.v1.subscriptions.update(sub.id, params={"cancel_at_period_end": False})
    return sub.id


def test_a_burst_of_lifecycles_costs_at_most_a_tenth_of_a_call_per_event(
        app, client, stripe_api, make_user):
    plans = prices(stripe_api)
    accounts = [make_user().account for _ in range(LIFECYCLES)]
    for account in accounts:
        subscribe_change_refund_cancel(stripe_api, account, plans)
    deliveries = capture_deliveries(app)
    links = {account.id: account.stripe_customer_id for account in accounts}
    with app.test_request_context("/"):
        expected = mirror_of_stripe_now(links)
    wipe(links)
    # The burst: every event is received before the first is processed (a queue's backlog).
    with app.test_request_context("/"):
        for headers, body in deliveries:
            record_event(body, headers["Stripe-Signature"])
        before = stripe_calls(app)
        outcome = retry_failed_events(limit=len(deliveries))
        calls = stripe_calls(app) - before
    assert set(outcome) <= {"processed", "ignored"} and sum(outcome.values()) == len(deliveries)
    db.session.expire_all()
    mirror = snapshot()
    assert mirror == expected, differences(mirror, expected)
    assert len(deliveries) >= 20 * LIFECYCLES
    assert calls <= 0.1 * len(deliveries), (calls, len(deliveries))


def test_events_of_the_second_of_a_fetched_copy_cost_one_fetch_in_a_backlog(
        app, stripe_api, make_user):
    plans = prices(stripe_api)
    account = make_user().account
    subscription_id = subscribe_change_refund_cancel(stripe_api, account, plans)
    deliveries = [d for d in capture_deliveries(app)
                  if f'"id": "{subscription_id}"'.encode() in d[1]
                  or f'"id":"{subscription_id}"'.encode() in d[1]]
    assert len(deliveries) >= 4
    with app.test_request_context("/"):
        for headers, body in deliveries:
            record_event(body, headers["Stripe-Signature"])
        # A view wrote Stripe's copy in the events' second: they may be older or newer.
        newest = db.session.scalar(db.select(db.func.max(WebhookEvent.stripe_created)))
        sync.subscription(stripe_client().v1.subscriptions.retrieve(subscription_id), newest)
        mark = db.session.scalar(db.select(MirrorFetch).where(
            MirrorFetch.stripe_id == subscription_id))
        assert mark.asked_at is None and mark.version == newest
        db.session.commit()
        before = stripe_calls(app)
        outcome = retry_failed_events(limit=len(deliveries))
        calls = stripe_calls(app) - before
    assert outcome == {"processed": len(deliveries)}
    # The first event asks Stripe; every other one was received before that and is covered.
    assert calls == 1
    db.session.expire_all()
    row = db.session.scalar(db.select(Subscription))
    remote = stripe_api.v1.subscriptions.retrieve(subscription_id)
    assert (row.status, row.cancel_at_period_end, row.stripe_price_id) == (
        remote.status, remote.cancel_at_period_end, remote["items"].data[0].price.id)


def test_inline_delivery_of_a_lifecycle_asks_stripe_only_for_the_customer(
        app, client, stripe_api, make_user):
    plans = prices(stripe_api)
    account = make_user().account
    subscribe_change_refund_cancel(stripe_api, account, plans)
    deliveries = capture_deliveries(app)
    before = stripe_calls(app)
    assert set(post_all(client, deliveries)) == {200}
    # The customer row came from the portal's own call (a fetched copy of the events'
    # second), so customer.updated asks once; the first paid invoice lists the payments.
    assert stripe_calls(app) - before <= 2
