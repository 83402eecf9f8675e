"""Every handler in the table, fed real events from the sandbox, leaves its mark on the mirror."""
from __future__ import annotations

import re
import time

from portal.extensions import db
from portal.models import Account, Invoice, PaymentMethod, Refund, Subscription, WebhookEvent
from portal.services import sync
from portal.services.catalog_sync import sync_catalog
from portal.services.checkout import start_checkout
from portal.services.customers import ensure_stripe_customer
from portal.services.webhooks import HANDLERS
from tests.helpers import customer_with_card, price_id

DAY = 86_400


def complete_checkout(client, url: str, card: str = "4242424242424242") -> None:
    """Pay a hosted Checkout page as a browser form would."""
    path = url.split("://", 1)[1].split("/", 1)[1]
    page = client.get("/" + path).get_data(as_text=True)
    token = re.search(r'name="form_token" value="([^"]+)"', page)[1]
    response = client.post("/" + path, data={
        "form_token": token, "action": "pay", "email": "buyer@example.com", "number": card,
        "expiry": "12 / 34", "cvc": "123", "name": "Buyer"})
    assert response.status_code in (302, 303), response.get_data(as_text=True)[:500]


def test_every_handler_runs_on_real_events(app, client, stripe_api, make_user, deliver_webhooks):
    sync_catalog()
    # checkout.session.completed (and the subscription it starts)
    buyer = make_user().account
    with app.test_request_context("/"):
        url = start_checkout(buyer, "pro_month", "http://localhost/ok", "http://localhost/no")
    complete_checkout(client, url)

    # invoice.payment_failed, payment_intent.payment_failed
    failing = make_user().account
    customer_with_card(stripe_api, failing, "pm_card_chargeCustomerFail")
    stripe_api.v1.subscriptions.create(params={
        "customer": failing.stripe_customer_id,
        "items": [{"price": price_id(stripe_api, "starter_month")}],
        "payment_behavior": "allow_incomplete"})

    # invoice.payment_action_required
    strict = make_user().account
    customer_with_card(stripe_api, strict, "pm_card_authenticationRequired")
    stripe_api.v1.subscriptions.create(params={
        "customer": strict.stripe_customer_id,
        "items": [{"price": price_id(stripe_api, "starter_month")}],
        "payment_behavior": "allow_incomplete"})

    # customer.subscription.deleted, payment_method.detached, refunds, void, uncollectible
    other = make_user().account
    spare = customer_with_card(stripe_api, other, "pm_card_mastercard")
    card = customer_with_card(stripe_api, other, "pm_card_visa")
    leaving = stripe_api.v1.subscriptions.create(params={
        "customer": other.stripe_customer_id,
        "items": [{"price": price_id(stripe_api, "pro_month")}]})
    stripe_api.v1.subscriptions.cancel(leaving.id)
    stripe_api.v1.payment_methods.detach(spare)
    charge = stripe_api.v1.charges.list(params={"customer": other.stripe_customer_id}).data[0]
    refund = stripe_api.v1.refunds.create(params={"charge": charge.id, "amount": 1000})
    stripe_api.v1.refunds.update(refund.id, params={"metadata": {"reason": "goodwill"}})

    # refund.failed, charge.refund.updated: a card whose refunds fail after succeeding
    bouncing = make_user().account
    bouncing_card = customer_with_card(stripe_api, bouncing, "pm_card_refundFail")
    paid = stripe_api.v1.payment_intents.create(params={
        "amount": 2000, "currency": "usd", "customer": bouncing.stripe_customer_id,
        "payment_method": bouncing_card, "confirm": True, "off_session": True})
    bounced = stripe_api.v1.refunds.create(params={"charge": paid.latest_charge, "amount": 500})
    manual = []
    for _ in range(2):
        stripe_api.v1.invoice_items.create(params={
            "customer": other.stripe_customer_id, "amount": 2500, "currency": "usd",
            "description": "Setup work"})
        invoice = stripe_api.v1.invoices.create(params={
            "customer": other.stripe_customer_id, "collection_method": "send_invoice",
            "days_until_due": 30, "pending_invoice_items_behavior": "include"})
        manual.append(stripe_api.v1.invoices.finalize_invoice(invoice.id))
    stripe_api.v1.invoices.void_invoice(manual[0].id)
    stripe_api.v1.invoices.mark_uncollectible(manual[1].id)

    # customer.subscription.trial_will_end, on a test clock moved to three days before the end
    clock = stripe_api.v1.test_helpers.test_clocks.create(params={"frozen_time": int(time.time())})
    trial_account = make_user().account
    customer = stripe_api.v1.customers.create(params={
        "test_clock": clock.id, "metadata": {"account_id": str(trial_account.id)}})
    sync.customer(customer)  # as ensure_stripe_customer does for the customers it creates
    db.session.commit()
    stripe_api.v1.payment_methods.attach("pm_card_visa", params={"customer": customer.id})
    stripe_api.v1.subscriptions.create(params={
        "customer": customer.id, "items": [{"price": price_id(stripe_api, "starter_month")}],
        "trial_period_days": 14, "default_payment_method": stripe_api.v1.payment_methods.list(
            params={"customer": customer.id}).data[0].id})
    stripe_api.v1.test_helpers.test_clocks.advance(clock.id, params={
        "frozen_time": clock.frozen_time + 11 * DAY + 60})

    # invoice.upcoming, 7 days before a renewal, on a clock of its own
    renewal_clock = stripe_api.v1.test_helpers.test_clocks.create(
        params={"frozen_time": int(time.time())})
    renewing = make_user().account
    renewing_customer = stripe_api.v1.customers.create(params={
        "test_clock": renewal_clock.id, "metadata": {"account_id": str(renewing.id)}})
    sync.customer(renewing_customer)
    db.session.commit()
    renewing_card = stripe_api.v1.payment_methods.attach(
        "pm_card_visa", params={"customer": renewing_customer.id})
    stripe_api.v1.subscriptions.create(params={
        "customer": renewing_customer.id, "default_payment_method": renewing_card.id,
        "items": [{"price": price_id(stripe_api, "starter_month")}]})
    stripe_api.v1.test_helpers.test_clocks.advance(renewal_clock.id, params={
        "frozen_time": renewal_clock.frozen_time + 24 * DAY})

    # customer.tax_id.created and .deleted
    tax_id = stripe_api.v1.customers.tax_ids.create(
        renewing_customer.id, params={"type": "eu_vat", "value": "FR12345678901"})
    stripe_api.v1.customers.tax_ids.delete(renewing_customer.id, tax_id.id)

    # billing.credit_grant.created, billing.credit_balance_transaction.created
    stripe_api.v1.billing.credit_grants.create(params={
        "customer": renewing_customer.id,
        "amount": {"type": "monetary", "monetary": {"currency": "usd", "value": 500}},
        "applicability_config": {"scope": {"price_type": "metered"}}})

    # customer.deleted: the account is unlinked from the customer Stripe no longer has
    leaving_account = make_user().account
    leaving_customer = ensure_stripe_customer(leaving_account)
    stripe_api.v1.customers.delete(leaving_customer)

    delivered = total = deliver_webhooks()
    while delivered:  # a pass posts at most 100
        delivered = deliver_webhooks()
        total += delivered
    assert total > 30
    db.session.expire_all()
    processed = set(db.session.scalars(db.select(WebhookEvent.type).where(
        WebhookEvent.status == "processed")))
    assert set(HANDLERS) <= processed, sorted(set(HANDLERS) - processed)
    assert db.session.scalar(db.select(db.func.count(WebhookEvent.id)).where(
        WebhookEvent.status == "failed")) == 0

    def subscription_of(account: Account) -> Subscription:
        return db.session.scalar(db.select(Subscription).where(
            Subscription.account_id == account.id))

    buyer = db.session.get(Account, buyer.id)
    assert buyer.stripe_customer_id and subscription_of(buyer).status == "active"
    assert db.session.get(Account, leaving_account.id).stripe_customer_id is None
    assert subscription_of(failing).status == "incomplete"
    failed = db.session.scalar(db.select(Invoice).where(Invoice.account_id == failing.id))
    assert failed.status == "open" and failed.attempt_count >= 1
    assert subscription_of(strict).status == "incomplete"
    assert subscription_of(other).status == "canceled"
    assert subscription_of(trial_account).status == "trialing"
    cards = set(db.session.scalars(db.select(PaymentMethod.stripe_payment_method_id).where(
        PaymentMethod.account_id == other.id)))
    assert cards == {card}
    statuses = {row.stripe_invoice_id: row.status for row in db.session.scalars(
        db.select(Invoice).where(Invoice.account_id == other.id))}
    assert statuses[manual[0].id] == "void" and statuses[manual[1].id] == "uncollectible"
    mirrored = db.session.scalar(db.select(Refund).where(Refund.stripe_refund_id == refund.id))
    assert (mirrored.stripe_refund_id, mirrored.amount, mirrored.account_id) == (
        refund.id, 1000, other.id)
    failed_refund = db.session.scalar(
        db.select(Refund).where(Refund.stripe_refund_id == bounced.id))
    assert (failed_refund.status, failed_refund.account_id) == ("failed", bouncing.id)
