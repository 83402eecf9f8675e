"""Every lifecycle's webhooks replayed in many orders end where Stripe is, field by field.

docs.stripe.com/webhooks#event-ordering: Stripe does not guarantee delivery order, and
retries a failed delivery later; docs.stripe.com/api/events/object: each event carries its
object as it was when the event happened.
"""
from __future__ import annotations

import json
import random
import threading

from portal.extensions import db
from portal.models import (
    Account,
    Charge,
    Invoice,
    InvoicePayment,
    MirrorFetch,
    MirrorTombstone,
    PaymentMethod,
    Refund,
    Subscription,
    TaxId,
    WebhookEvent,
)
from portal.services import sync
from portal.services.customers import ensure_stripe_customer
from portal.services.stripe_client import stripe_client
from portal.services.webhooks import invoice_extras
from tests.helpers import customer_with_card, skip_or_fail
from tests.test_webhook_lifecycle import capture_deliveries, post_all

MIRRORED = (Subscription, Invoice, InvoicePayment, PaymentMethod, Charge, Refund, TaxId)
ACCOUNT_FIELDS = ("stripe_customer_id", "default_payment_method_id", "balance",
                  "legal_name", "billing_email")


def prices(stripe_api) -> tuple[str, str]:
    """Create a monthly and a yearly price of one product; return their ids."""
    product = stripe_api.v1.products.create(params={"name": "Pro"})
    monthly, yearly = (stripe_api.v1.prices.create(params={
        "product": product.id, "currency": "usd", "unit_amount": amount,
        "recurring": {"interval": interval}}) for amount, interval in ((4900, "month"),
                                                                       (49000, "year")))
    return monthly.id, yearly.id


def run_lifecycles(stripe_api, make_user) -> list[Account]:
    """Subscribe, change, refund, cancel; swap and remove cards; fail then pay an invoice;
    add and delete a tax id; delete a customer. Return the accounts."""
    monthly, yearly = prices(stripe_api)
    accounts = [make_user().account for _ in range(3)]
    first, failing, leaving = accounts

    card = customer_with_card(stripe_api, first, "pm_card_visa")
    sub = stripe_api.v1.subscriptions.create(params={
        "customer": first.stripe_customer_id, "items": [{"price": monthly}]})
    stripe_api.v1.subscriptions.update(sub.id, params={
        "items": [{"id": sub["items"].data[0].id, "price": yearly}],
        "proration_behavior": "always_invoice"})
    charge = stripe_api.v1.charges.list(params={"customer": first.stripe_customer_id}).data[0]
    stripe_api.v1.refunds.create(params={"charge": charge.id, "amount": 700})
    stripe_api.v1.subscriptions.update(sub.id, params={"cancel_at_period_end": True})
    stripe_api.v1.subscriptions.update(sub.id, params={"cancel_at_period_end": False})
    spare = stripe_api.v1.payment_methods.attach("pm_card_mastercard", params={
        "customer": first.stripe_customer_id})
    stripe_api.v1.customers.update(first.stripe_customer_id, params={
        "invoice_settings": {"default_payment_method": spare.id}})
    stripe_api.v1.payment_methods.detach(card)
    stripe_api.v1.subscriptions.cancel(sub.id)

    customer_with_card(stripe_api, failing, "pm_card_chargeCustomerFail")
    unpaid = stripe_api.v1.subscriptions.create(params={
        "customer": failing.stripe_customer_id, "items": [{"price": monthly}]})
    good = stripe_api.v1.payment_methods.attach("pm_card_visa", params={
        "customer": failing.stripe_customer_id})
    stripe_api.v1.invoices.pay(unpaid.latest_invoice, params={"payment_method": good.id})
    tax_id = stripe_api.v1.customers.tax_ids.create(failing.stripe_customer_id, params={
        "type": "eu_vat", "value": "FR12345678901"})
    stripe_api.v1.customers.tax_ids.create(failing.stripe_customer_id, params={
        "type": "eu_vat", "value": "DE123456789"})
    stripe_api.v1.customers.tax_ids.delete(failing.stripe_customer_id, tax_id.id)

    customer_with_card(stripe_api, leaving, "pm_card_amex")
    stripe_api.v1.customers.delete(leaving.stripe_customer_id)
    return accounts


def snapshot() -> dict:
    """Return every mirrored row as plain values, minus local ids and bookkeeping."""
    tables = {}
    for model in MIRRORED:
        rows = [{column.name: getattr(row, column.name) for column in model.__table__.columns
                 if column.name not in ("id", "synced_at", "version")}
                for row in db.session.scalars(db.select(model))]
        tables[model.__tablename__] = sorted(rows, key=repr)
    tables["accounts"] = sorted(
        tuple(getattr(account, name) for name in ("id", *ACCOUNT_FIELDS))
        for account in db.session.scalars(db.select(Account)))
    return tables


def differences(mirror: dict, expected: dict) -> dict:
    """Return, per table, the rows only the mirror has and the rows only Stripe has."""
    return {table: ([row for row in rows if row not in expected[table]],
                    [row for row in expected[table] if row not in rows])
            for table, rows in mirror.items() if rows != expected[table]}


def wipe(links: dict[int, str]) -> None:
    """Forget every mirrored object, tombstone and event; accounts keep their first link."""
    for model in (*MIRRORED, MirrorTombstone, MirrorFetch, WebhookEvent):
        db.session.execute(db.delete(model))
    for account_id, customer_id in links.items():
        db.session.execute(db.update(Account).where(Account.id == account_id).values(
            stripe_customer_id=customer_id, default_payment_method_id=None, version=0,
            balance=0, legal_name=None, billing_email=None))
    db.session.commit()


def mirror_of_stripe_now(links: dict[int, str]) -> dict:
    """Build the mirror from Stripe's current objects (fetched now) and return its snapshot."""
    client = stripe_client()
    wipe(links)
    for customer_id in links.values():
        customer = client.v1.customers.retrieve(customer_id)
        sync.customer(customer)
        if customer.to_dict().get("deleted"):
            continue
        for sub in client.v1.subscriptions.list(params={
                "customer": customer_id, "status": "all"}).data:
            sync.subscription(sub)
        for pm in client.v1.payment_methods.list(params={"customer": customer_id}).data:
            sync.payment_method(pm)
        for tax_id in client.v1.customers.tax_ids.list(customer_id).data:
            sync.tax_id(tax_id)
        for charge in client.v1.charges.list(params={"customer": customer_id}).data:
            sync.charge(charge)
            for refund in client.v1.refunds.list(params={"charge": charge.id}).data:
                sync.refund(refund)
        for invoice in client.v1.invoices.list(params={"customer": customer_id}).data:
            sync.invoice(invoice, **invoice_extras(stripe_client, invoice.to_dict()))
    db.session.commit()
    return snapshot()


def orders(deliveries: list) -> dict[str, list]:
    """Return the delivery orders replayed: as sent, reversed, shuffled, shuffled with repeats."""
    runs = {"in order": deliveries, "reversed": deliveries[::-1]}
    for seed in (1, 2, 3, 4):
        shuffled = list(deliveries)
        random.Random(seed).shuffle(shuffled)
        runs[f"shuffled {seed}"] = shuffled
    repeated = deliveries + random.Random(5).sample(deliveries, k=len(deliveries) // 2)
    random.Random(6).shuffle(repeated)
    runs["shuffled with duplicates"] = repeated
    return runs


def lifecycle_traffic(app, stripe_api, make_user) -> tuple[list, dict[int, str], dict]:
    """Run the lifecycles; return their deliveries, account links and Stripe's mirror."""
    accounts = run_lifecycles(stripe_api, make_user)
    deliveries = capture_deliveries(app)
    types = {json.loads(body)["type"] for _headers, body in deliveries}
    assert {"payment_method.detached", "customer.deleted", "customer.tax_id.deleted",
            "customer.subscription.deleted", "invoice.payment_failed", "invoice.paid",
            "refund.created"} <= types
    links = {account.id: account.stripe_customer_id for account in accounts}
    with app.test_request_context("/"):
        expected = mirror_of_stripe_now(links)
    return deliveries, links, expected


def test_every_order_ends_on_stripes_current_objects(app, client, stripe_api, make_user):
    deliveries, links, expected = lifecycle_traffic(app, stripe_api, make_user)
    assert expected["subscriptions"] and expected["invoices"] and expected["refunds"]
    assert len(expected["payment_methods"]) == 3  # the detached card is gone at Stripe
    for name, run in orders(deliveries).items():
        wipe(links)
        assert set(post_all(client, run)) == {200}, name
        assert set(db.session.scalars(db.select(WebhookEvent.status))) <= {
            "processed", "ignored"}, name
        db.session.expire_all()
        mirror = snapshot()
        assert mirror == expected, (name, differences(mirror, expected))


def test_a_removed_card_never_comes_back(app, client, stripe_api, make_user):
    account = make_user().account
    card = customer_with_card(stripe_api, account, "pm_card_visa")
    stripe_api.v1.payment_methods.detach(card)
    deliveries = capture_deliveries(app)
    detached = [d for d in deliveries if b'"payment_method.detached"' in d[1]]
    attached = [d for d in deliveries if b'"payment_method.attached"' in d[1]]
    # Stripe retries the failed attached delivery after the card was removed.
    assert post_all(client, detached + attached) == [200, 200]
    assert db.session.scalar(db.select(PaymentMethod).where(
        PaymentMethod.stripe_payment_method_id == card)) is None
    grave = db.session.scalar(db.select(MirrorTombstone))
    assert (grave.stripe_id, grave.object_type) == (card, "payment_methods")
    assert grave.version == json.loads(detached[0][1])["created"]


def test_a_deleted_customer_is_not_linked_again_by_a_late_event(app, client, stripe_api,
                                                                 make_user):
    account = make_user().account
    customer_id = ensure_stripe_customer(account)
    db.session.commit()
    stripe_api.v1.customers.update(customer_id, params={"name": "Late Ltd"})
    stripe_api.v1.customers.delete(customer_id)
    deliveries = capture_deliveries(app)
    deleted = [d for d in deliveries if b'"customer.deleted"' in d[1]]
    late = [d for d in deliveries if b'"customer.updated"' in d[1]]
    assert post_all(client, deleted + late) == [200] * (len(deleted) + len(late))
    db.session.expire_all()
    assert db.session.get(Account, account.id).stripe_customer_id is None


def test_concurrent_delivery_in_any_order_ends_on_stripe(app, stripe_api, make_user):
    if db.engine.dialect.name != "postgresql":
        skip_or_fail("concurrent replay is tested on PostgreSQL: set TEST_DATABASE_URL",
                     "REQUIRE_POSTGRES")
    deliveries, links, expected = lifecycle_traffic(app, stripe_api, make_user)
    for seed in (1, 2):
        wipe(links)
        shuffled = deliveries * 2
        random.Random(seed).shuffle(shuffled)
        lanes = [shuffled[index::4] for index in range(4)]
        barrier = threading.Barrier(len(lanes))
        results: list[int] = []

        def deliver(lane, barrier=barrier, results=results):
            barrier.wait()
            results.extend(post_all(app.test_client(), lane))

        threads = [threading.Thread(target=deliver, args=(lane,)) for lane in lanes]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert set(results) == {200}
        db.session.expire_all()
        assert set(db.session.scalars(db.select(WebhookEvent.status))) <= {
            "processed", "ignored"}
        mirror = snapshot()
        assert mirror == expected, (seed, differences(mirror, expected))

