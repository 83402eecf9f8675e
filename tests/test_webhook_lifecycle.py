"""A real subscription lifecycle in the sandbox, its webhooks applied in order, shuffled,
duplicated and concurrently: the mirror always ends where Stripe is."""
from __future__ import annotations

import random
import threading

import pytest

from portal.extensions import db
from portal.models import (
    Account,
    Charge,
    Invoice,
    PaymentMethod,
    Refund,
    Subscription,
    WebhookEvent,
)
from portal.services.customers import ensure_stripe_customer
from tests.helpers import skip_or_fail

MIRROR_MODELS = (Subscription, Invoice, PaymentMethod, Charge, Refund)


def run_lifecycle(stripe_api, account: Account) -> str:
    """Subscribe, change plan, pay, refund, cancel at period end and resume; return the sub id."""
    customer_id = ensure_stripe_customer(account)
    product = stripe_api.v1.products.create(params={"name": "Pro"})
    monthly = stripe_api.v1.prices.create(params={
        "product": product.id, "currency": "usd", "unit_amount": 4900,
        "recurring": {"interval": "month"}})
    yearly = stripe_api.v1.prices.create(params={
        "product": product.id, "currency": "usd", "unit_amount": 49000,
        "recurring": {"interval": "year"}})
    card = stripe_api.v1.payment_methods.attach("pm_card_visa", params={"customer": customer_id})
    stripe_api.v1.customers.update(customer_id, params={
        "invoice_settings": {"default_payment_method": card.id}})
    subscription = stripe_api.v1.subscriptions.create(params={
        "customer": customer_id, "items": [{"price": monthly.id}]})
    item_id = subscription["items"].data[0].id
    stripe_api.v1.subscriptions.update(subscription.id, params={
        "items": [{"id": item_id, "price": yearly.id}],
        "proration_behavior": "always_invoice"})
    charges = stripe_api.v1.charges.list(params={"customer": customer_id}).data
    stripe_api.v1.refunds.create(params={"charge": charges[0].id, "amount": 500})
    stripe_api.v1.subscriptions.update(subscription.id, params={"cancel_at_period_end": True})
    stripe_api.v1.subscriptions.update(subscription.id, params={"cancel_at_period_end": False})
    return subscription.id


def capture_deliveries(app) -> list[tuple[dict, bytes]]:
    """Make the sandbox hand over its due webhooks (headers, body) instead of posting them."""
    from portal.sandbox import deliver_due

    sandbox = app.extensions["stripe_sandbox"]
    captured: list[tuple[dict, bytes]] = []

    def keep(url: str, headers: dict, body: bytes) -> int:
        captured.append((dict(headers), body))
        return 200

    original = sandbox.config["SANDBOX_DELIVER"]
    sandbox.config["SANDBOX_DELIVER"] = keep
    try:
        deliver_due(sandbox)
    finally:
        sandbox.config["SANDBOX_DELIVER"] = original
    return captured


def mirror_snapshot() -> dict:
    """Return every mirrored row as plain values, minus local ids and bookkeeping."""
    snapshot = {}
    for model in MIRROR_MODELS:
        rows = []
        for row in db.session.scalars(db.select(model)):
            values = {column.name: getattr(row, column.name) for column in model.__table__.columns
                      if column.name not in ("id", "synced_at", "version")}
            rows.append(values)
        snapshot[model.__tablename__] = sorted(rows, key=repr)
    snapshot["accounts"] = sorted(
        (account.id, account.stripe_customer_id, account.default_payment_method_id or "")
        for account in db.session.scalars(db.select(Account))
    )
    return snapshot


def wipe_mirror() -> None:
    """Forget every mirrored object and event (the accounts keep their customer link)."""
    for model in (*MIRROR_MODELS, WebhookEvent):
        db.session.execute(db.delete(model))
    db.session.execute(db.update(Account).values(default_payment_method_id=None,
                                                 stripe_customer_version=0))
    db.session.commit()


def post_all(client, deliveries) -> list[int]:
    """POST each captured delivery to the portal; return the status codes."""
    return [client.post("/webhooks/stripe", data=body, headers=headers).status_code
            for headers, body in deliveries]


def test_lifecycle_webhooks_build_the_mirror(app, client, stripe_api, make_user, deliver_webhooks):
    account = make_user().account
    subscription_id = run_lifecycle(stripe_api, account)
    assert deliver_webhooks() > 10
    row = db.session.scalar(db.select(Subscription))
    remote = stripe_api.v1.subscriptions.retrieve(subscription_id)
    assert (row.stripe_subscription_id, row.account_id) == (subscription_id, account.id)
    assert row.status == remote.status == "active"
    assert row.stripe_price_id == remote["items"].data[0].price.id
    assert row.cancel_at_period_end is False
    invoices = db.session.scalars(db.select(Invoice)).all()
    assert len(invoices) >= 2 and all(invoice.status == "paid" for invoice in invoices)
    assert all(invoice.account_id == account.id for invoice in invoices)
    card = db.session.scalar(db.select(PaymentMethod))
    assert (card.brand, card.last4) == ("visa", "4242")
    assert db.session.get(Account, account.id).default_payment_method_id == \
        card.stripe_payment_method_id
    refund = db.session.scalar(db.select(Refund))
    assert refund.amount == 500 and refund.account_id == account.id
    charge = db.session.scalar(db.select(Charge).where(
        Charge.stripe_charge_id == refund.stripe_charge_id))
    assert charge.amount_refunded == 500
    statuses = set(db.session.scalars(db.select(WebhookEvent.status)))
    assert statuses <= {"processed", "ignored"}


def test_shuffled_and_duplicated_delivery_ends_like_in_order(app, client, stripe_api, make_user):
    account = make_user().account
    run_lifecycle(stripe_api, account)
    deliveries = capture_deliveries(app)
    assert len(deliveries) > 10
    assert set(post_all(client, deliveries)) == {200}
    in_order = mirror_snapshot()
    assert in_order["subscriptions"] and in_order["invoices"]
    for seed in (1, 2, 3):
        wipe_mirror()
        shuffled = deliveries + random.Random(seed).sample(deliveries, k=len(deliveries) // 2)
        random.Random(seed).shuffle(shuffled)
        assert set(post_all(client, shuffled)) == {200}
        assert mirror_snapshot() == in_order, f"seed {seed}"


def test_same_event_delivered_concurrently_is_applied_once(app, stripe_api, make_user):
    if db.engine.dialect.name != "postgresql":
        skip_or_fail("concurrent delivery is tested on PostgreSQL: set TEST_DATABASE_URL",
                     "REQUIRE_POSTGRES")
    account = make_user().account
    run_lifecycle(stripe_api, account)
    deliveries = capture_deliveries(app)
    db.session.commit()
    barrier = threading.Barrier(6)
    results: list[int] = []

    def deliver_all():
        client = app.test_client()
        barrier.wait()
        results.extend(post_all(client, deliveries))

    threads = [threading.Thread(target=deliver_all) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert set(results) == {200}
    db.session.expire_all()
    events = db.session.scalars(db.select(WebhookEvent)).all()
    assert len(events) == len({body for _headers, body in deliveries})
    assert all(event.attempts == 1 for event in events)
    assert {event.status for event in events} <= {"processed", "ignored"}


@pytest.mark.parametrize("when", ["before", "after"])
def test_view_write_and_webhook_never_make_two_rows(app, client, stripe_api, make_user,
                                                   deliver_webhooks, when):
    from portal.services import sync

    account = make_user().account
    subscription_id = run_lifecycle(stripe_api, account)
    fresh = stripe_api.v1.subscriptions.retrieve(subscription_id)
    if when == "before":
        sync.subscription(fresh)
        db.session.commit()
    deliver_webhooks()
    if when == "after":
        sync.subscription(fresh)
        db.session.commit()
    assert db.session.scalar(db.select(db.func.count(Subscription.id))) == 1


def test_late_events_never_undo_what_a_view_just_saved(app, client, stripe_api, make_user):
    from portal.services.subscriptions import cancel_at_period_end

    account = make_user().account
    run_lifecycle(stripe_api, account)
    # Every event so far is still in flight when the customer cancels from the portal.
    late = [delivery for delivery in capture_deliveries(app)
            if b'"customer.subscription.' in delivery[1]]
    assert len(late) >= 3
    subscription = stripe_api.v1.subscriptions.list(
        params={"customer": account.stripe_customer_id}).data[0]
    with app.test_request_context("/"):
        from portal.services import sync

        sync.subscription(stripe_api.v1.subscriptions.retrieve(subscription.id))
        db.session.commit()
        cancel_at_period_end(account, "unused", None)
    # Each older delivery says the subscription renews; none may undo the cancellation.
    for delivery in late:
        assert post_all(client, [delivery]) == [200]
        db.session.expire_all()
        row = db.session.scalar(db.select(Subscription))
        assert row.cancel_at_period_end is True and row.cancellation_feedback == "unused"
