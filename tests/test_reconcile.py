"""`flask billing reconcile`: mirror rows deleted or corrupted behind the portal's back are
brought back to Stripe's copy through the sync path, and a second run finds nothing to do.

Stripe behaviour followed: list endpoints page with `starting_after` and filter on
`created[gte]` (https://docs.stripe.com/api/pagination, https://docs.stripe.com/api/subscriptions/list
with `status=all` to include canceled ones).
"""
from __future__ import annotations

import re

from sqlalchemy import inspect, text

from portal.extensions import db
from portal.models import Account, Charge, Invoice, PaymentMethod, Refund, Subscription
from portal.services.customers import ensure_stripe_customer
from portal.services.reconcile import BOOKKEEPING
from tests import factories

REPAIRED = re.compile(r"^repaired (\S+) (\S+): (.*)$", re.MULTILINE)
MIRROR_MODELS = (Account, Subscription, Invoice, PaymentMethod, Charge, Refund)


def build_history(stripe_api, account: Account) -> str:
    """Subscribe with two cards, switch plan (billed at once), refund part, cancel at period end."""
    customer_id = ensure_stripe_customer(account)
    product = stripe_api.v1.products.create(params={"name": "Pro"})
    monthly = stripe_api.v1.prices.create(params={
        "product": product.id, "currency": "usd", "unit_amount": 4900,
        "recurring": {"interval": "month"}})
    yearly = stripe_api.v1.prices.create(params={
        "product": product.id, "currency": "usd", "unit_amount": 49000,
        "recurring": {"interval": "year"}})
    card = stripe_api.v1.payment_methods.attach("pm_card_visa", params={"customer": customer_id})
    stripe_api.v1.payment_methods.attach("pm_card_mastercard", params={"customer": customer_id})
    stripe_api.v1.customers.update(customer_id, params={
        "invoice_settings": {"default_payment_method": card.id}})
    subscription = stripe_api.v1.subscriptions.create(params={
        "customer": customer_id, "items": [{"price": monthly.id}]})
    stripe_api.v1.subscriptions.update(subscription.id, params={
        "items": [{"id": subscription["items"].data[0].id, "price": yearly.id}],
        "proration_behavior": "always_invoice"})
    charge = stripe_api.v1.charges.list(params={"customer": customer_id}).data[0]
    stripe_api.v1.refunds.create(params={"charge": charge.id, "amount": 500})
    stripe_api.v1.subscriptions.update(subscription.id, params={"cancel_at_period_end": True})
    return customer_id


def mirror_state() -> dict[tuple[str, str], dict]:
    """Return every mirror row by (table, Stripe id), without bookkeeping columns."""
    db.session.expire_all()
    state = {}
    for model in MIRROR_MODELS:
        for row in db.session.scalars(db.select(model)):
            if row.stripe_id is None:
                continue
            state[(model.__tablename__, row.stripe_id)] = {
                attr.key: getattr(row, attr.key) for attr in inspect(model).column_attrs
                if attr.key not in BOOKKEEPING}
    db.session.rollback()
    return state


def run_reconcile(app, *args: str):
    result = app.test_cli_runner().invoke(args=["billing", "reconcile", *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_reconcile_restores_deleted_and_corrupted_rows(app, stripe_api, deliver_webhooks):
    account = factories.make_account()
    customer_id = build_history(stripe_api, account)
    while deliver_webhooks():
        pass
    expected = mirror_state()
    kinds = {table for table, _ in expected}
    assert kinds == {"accounts", "subscriptions", "invoices", "payment_methods", "charges",
                     "refunds"}
    # The mirror agrees with Stripe after the webhooks: nothing to repair.
    assert not REPAIRED.findall(run_reconcile(app, "--days", "2"))

    subscription = db.session.scalar(db.select(Subscription))
    invoices = db.session.scalars(db.select(Invoice).order_by(Invoice.id)).all()
    refund = db.session.scalar(db.select(Refund))
    charge = db.session.scalar(db.select(Charge).where(
        Charge.stripe_charge_id == refund.stripe_charge_id))
    card = db.session.scalar(db.select(PaymentMethod).order_by(PaymentMethod.id))
    ids = {"sub": subscription.stripe_subscription_id, "inv0": invoices[0].stripe_invoice_id,
           "inv1": invoices[-1].stripe_invoice_id, "ch": charge.stripe_charge_id,
           "re": refund.stripe_refund_id, "pm": card.stripe_payment_method_id}
    db.session.rollback()
    with db.engine.begin() as connection:
        # Drift as a lost webhook or a hand edit leaves it, written past the sync path.
        connection.execute(text(
            "UPDATE subscriptions SET status = 'past_due', cancel_at_period_end = :no, "
            "quantity = 7 WHERE stripe_subscription_id = :id"), {"id": ids["sub"], "no": False})
        connection.execute(text("DELETE FROM invoices WHERE stripe_invoice_id = :id"),
                           {"id": ids["inv0"]})
        connection.execute(text(
            "UPDATE invoices SET total = 1, amount_paid = 0, status = 'open' "
            "WHERE stripe_invoice_id = :id"), {"id": ids["inv1"]})
        connection.execute(text(
            "UPDATE charges SET amount_refunded = 0 WHERE stripe_charge_id = :id"),
            {"id": ids["ch"]})
        connection.execute(text("DELETE FROM refunds WHERE stripe_refund_id = :id"),
                           {"id": ids["re"]})
        connection.execute(text(
            "DELETE FROM payment_methods WHERE stripe_payment_method_id = :id"), {"id": ids["pm"]})
        connection.execute(text(
            "UPDATE accounts SET balance = -999 WHERE stripe_customer_id = :id"),
            {"id": customer_id})
        # A card the mirror shows but Stripe no longer has attached.
        connection.execute(text(
            "INSERT INTO payment_methods (stripe_payment_method_id, stripe_customer_id, "
            "account_id, brand, last4, exp_month, exp_year, version, stripe_created, synced_at) "
            "VALUES ('pm_ghost', :customer, :account, 'visa', '0000', 1, 2030, 0, "
            "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"),
            {"customer": customer_id, "account": account.id})
    assert mirror_state() != expected

    output = run_reconcile(app, "--days", "2")
    repaired = REPAIRED.findall(output)
    by_id = {stripe_id: (kind, what) for kind, stripe_id, what in repaired}
    assert by_id[ids["sub"]][0] == "subscription"
    assert "status 'past_due' -> 'active'" in by_id[ids["sub"]][1]
    assert "quantity 7 -> 1" in by_id[ids["sub"]][1]
    assert by_id[ids["inv0"]] == ("invoice", "missing from the mirror; restored")
    assert "total 1 -> " in by_id[ids["inv1"]][1]
    assert by_id[ids["ch"]] == ("charge", "amount_refunded 0 -> 500")
    assert by_id[ids["re"]] == ("refund", "missing from the mirror; restored")
    assert by_id[ids["pm"]] == ("payment_method", "missing from the mirror; restored")
    assert by_id[customer_id] == ("customer", "balance -999 -> 0")
    assert by_id["pm_ghost"] == ("payment_method", "no longer belongs in the mirror; removed")
    assert len(repaired) == 8, output
    assert mirror_state() == expected

    # Nothing left to do: a second run repairs nothing and rewrites no row.
    versions = {row.stripe_subscription_id: (row.version, row.synced_at)
                for row in db.session.scalars(db.select(Subscription))}
    again = run_reconcile(app, "--days", "2")
    assert not REPAIRED.findall(again) and ": 0 repaired." in again
    db.session.expire_all()
    assert versions == {row.stripe_subscription_id: (row.version, row.synced_at)
                        for row in db.session.scalars(db.select(Subscription))}


def test_reconcile_refuses_a_bad_window(app):
    result = app.test_cli_runner().invoke(args=["billing", "reconcile", "--days", "0"])
    assert result.exit_code != 0 and "--days" in result.output
