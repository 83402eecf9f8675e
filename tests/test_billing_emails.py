"""Billing emails from real sandbox events: receipts, failed payments, trial and renewal
reminders, cancellations; each sent once per event, with text and HTML parts."""
from __future__ import annotations

import io
import json
import time
from email import policy
from email.parser import BytesParser
from pathlib import Path

from pypdf import PdfReader

from portal.extensions import db
from portal.models import Account, Invoice, QueuedMail, WebhookEvent
from portal.services import sync
from portal.services.catalog_sync import sync_catalog
from portal.services.payment_methods import set_default
from portal.services.webhooks import retry_failed_events
from tests.helpers import csrf_from
from tests.invoice_support import bill, deliver_all, signed_in
from tests.test_webhooks import post_event

DAY = 86_400


def mails(outbox: Path, subject_part: str = "") -> list:
    """Return the messages in the outbox whose subject contains `subject_part`."""
    found = []
    for path in sorted(outbox.glob("*.eml")) if outbox.exists() else []:
        message = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
        if subject_part in message["Subject"]:
            found.append(message)
    return found


def parts(message) -> tuple[str, str]:
    """Return a message's plain-text and HTML bodies."""
    return (message.get_body(("plain",)).get_content(),
            message.get_body(("html",)).get_content())


def clock_customer(stripe_api, account: Account, clock_id: str, card: str = "pm_card_visa") -> str:
    """Make the account's Stripe customer on a test clock, with a default card."""
    customer = stripe_api.v1.customers.create(params={
        "test_clock": clock_id, "email": account.users[0].email,
        "metadata": {"account_id": str(account.id)}})
    sync.customer(customer)  # as ensure_stripe_customer does for the customers it creates
    db.session.commit()
    method = stripe_api.v1.payment_methods.attach(card, params={"customer": customer.id})
    stripe_api.v1.customers.update(customer.id, params={
        "invoice_settings": {"default_payment_method": method.id}})
    return customer.id


def price_id(stripe_api, lookup_key: str) -> str:
    return stripe_api.v1.prices.list(params={"lookup_keys": [lookup_key]}).data[0].id


def test_receipt_is_sent_once_with_the_pdf_even_when_invoice_paid_comes_twice(
        app, client, stripe_api, make_user, deliver_webhooks, outbox):
    user = make_user()
    invoice = bill(stripe_api, deliver_webhooks, user.account, [("Consulting", 25000)])
    receipts = mails(outbox, "Receipt for invoice")
    assert len(receipts) == 1
    receipt = receipts[0]
    assert receipt["To"] == user.email
    text, html = parts(receipt)
    assert invoice.number in text and "$250.00" in text and "$250.00" in html
    attachment = next(receipt.iter_attachments())
    assert attachment.get_filename() == f"invoice-{invoice.number}.pdf"
    pdf_text = PdfReader(io.BytesIO(attachment.get_content())).pages[0].extract_text()
    assert invoice.number in pdf_text and "Consulting" in pdf_text
    # The handler queued a reference; the PDF was rendered when the receipt was sent.
    queued = db.session.scalar(db.select(QueuedMail).where(
        QueuedMail.dedupe_key == f"receipt:{invoice.stripe_invoice_id}"))
    assert queued.attachments == [{"filename": f"invoice-{invoice.number}.pdf",
                                   "mimetype": "application/pdf",
                                   "invoice": invoice.stripe_invoice_id}]

    event = db.session.scalar(db.select(WebhookEvent).where(WebhookEvent.type == "invoice.paid"))
    # The same delivery again: acknowledged as a duplicate.
    assert post_event(client, app, event.payload.encode()).status_code == 200
    # A replay of the stored event (as an operator's retry would do).
    event.status = "failed"
    db.session.commit()
    assert retry_failed_events() == {"processed": 1}
    # Stripe sending the same invoice.paid under a new event id.
    twin = json.loads(event.payload)
    twin["id"], twin["created"] = "evt_twin_paid", twin["created"] + 1
    body = json.dumps(twin).encode()
    assert post_event(client, app, body).status_code == 200
    assert len(mails(outbox, "Receipt for invoice")) == 1
    assert db.session.scalar(db.select(db.func.count(QueuedMail.id)).where(
        QueuedMail.dedupe_key == f"receipt:{invoice.stripe_invoice_id}")) == 1


def test_failed_renewal_mails_and_shows_the_retry_date_then_another_card_pays(
        app, stripe_api, make_user, deliver_webhooks, outbox):
    sync_catalog()
    user = make_user()
    account = user.account
    clock = stripe_api.v1.test_helpers.test_clocks.create(params={"frozen_time": int(time.time())})
    customer_id = clock_customer(stripe_api, account, clock.id)
    subscription = stripe_api.v1.subscriptions.create(params={
        "customer": customer_id, "items": [{"price": price_id(stripe_api, "starter_month")}]})
    failing = stripe_api.v1.payment_methods.attach("pm_card_chargeCustomerFail",
                                               params={"customer": customer_id})
    stripe_api.v1.customers.update(customer_id, params={
        "invoice_settings": {"default_payment_method": failing.id}})
    period_end = subscription["items"].data[0].current_period_end
    stripe_api.v1.test_helpers.test_clocks.advance(clock.id, params={
        "frozen_time": period_end + 2 * 3600})
    deliver_all(deliver_webhooks)
    db.session.expire_all()

    renewal = stripe_api.v1.invoices.list(
        params={"customer": customer_id, "status": "open"}).data[0]
    assert renewal.attempt_count == 1 and renewal.next_payment_attempt
    retry_day = time.strftime("%d %b %Y", time.gmtime(renewal.next_payment_attempt))
    notices = mails(outbox, "Payment failed")
    assert len(notices) == 1
    text, html = parts(notices[0])
    assert "$19.00" in text and f"try again on {retry_day}" in text
    assert "Your bank declined the payment." in text and "Pay now" in html
    assert f"/billing/invoices/{renewal.id}#pay" in text

    customer = signed_in(app, user)
    dashboard = customer.get("/billing/").get_data(as_text=True)
    banner_day = time.strftime("%d %b %Y", time.gmtime(renewal.next_payment_attempt))
    assert "payment-failed-banner" in dashboard and "$19.00" in dashboard
    assert f"We will try again on {banner_day}" in dashboard and "Pay now" in dashboard
    assert "payment-failed-banner" in customer.get("/billing/invoices").get_data(as_text=True)

    good = stripe_api.v1.payment_methods.attach("pm_card_visa", params={"customer": customer_id})
    deliver_all(deliver_webhooks)
    with app.test_request_context("/"):
        set_default(db.session.get(Account, account.id), good.id)
    response = customer.post(f"/billing/invoices/{renewal.id}/pay",
                             data={"csrf_token": csrf_from(customer, "/billing/")})
    assert response.status_code == 303
    deliver_all(deliver_webhooks)
    db.session.expire_all()
    assert db.session.scalar(db.select(Invoice.status).where(
        Invoice.stripe_invoice_id == renewal.id)) == "paid"
    assert "payment-failed-banner" not in customer.get("/billing/").get_data(as_text=True)
    assert len(mails(outbox, f"Receipt for invoice {renewal.number}")) == 1
    assert len(mails(outbox, "Payment failed")) == 1


def test_trial_reminder_three_days_before_the_end_unless_turned_off(
        app, stripe_api, make_user, deliver_webhooks, outbox):
    sync_catalog()
    clock = stripe_api.v1.test_helpers.test_clocks.create(params={"frozen_time": int(time.time())})
    keen, quiet = make_user(), make_user()
    quiet.account.reminder_emails = False
    db.session.commit()
    trial_ends = {}
    for user in (keen, quiet):
        customer_id = clock_customer(stripe_api, user.account, clock.id)
        subscription = stripe_api.v1.subscriptions.create(params={
            "customer": customer_id, "items": [{"price": price_id(stripe_api, "starter_month")}],
            "trial_period_days": 14})
        trial_ends[user.email] = subscription.trial_end
    stripe_api.v1.test_helpers.test_clocks.advance(clock.id, params={
        "frozen_time": clock.frozen_time + 11 * DAY + 60})
    deliver_all(deliver_webhooks)
    reminders = mails(outbox, "Your trial ends soon")
    assert [m["To"] for m in reminders] == [keen.email]
    text, html = parts(reminders[0])
    ends = time.strftime("%d %b %Y", time.gmtime(trial_ends[keen.email]))
    assert f"ends on {ends}" in text and ends in html and "$19.00 per month" in text


def test_yearly_renewal_reminder_from_invoice_upcoming_but_not_for_monthly(
        app, stripe_api, make_user, deliver_webhooks, outbox):
    sync_catalog()
    yearly_user, monthly_user = make_user(), make_user()
    yearly_clock = stripe_api.v1.test_helpers.test_clocks.create(
        params={"frozen_time": int(time.time())})
    yearly = stripe_api.v1.subscriptions.create(params={
        "customer": clock_customer(stripe_api, yearly_user.account, yearly_clock.id),
        "items": [{"price": price_id(stripe_api, "pro_year")}]})
    monthly_clock = stripe_api.v1.test_helpers.test_clocks.create(
        params={"frozen_time": int(time.time())})
    stripe_api.v1.subscriptions.create(params={
        "customer": clock_customer(stripe_api, monthly_user.account, monthly_clock.id),
        "items": [{"price": price_id(stripe_api, "pro_month")}]})
    renews_at = yearly["items"].data[0].current_period_end
    stripe_api.v1.test_helpers.test_clocks.advance(yearly_clock.id, params={
        "frozen_time": renews_at - 6 * DAY})
    stripe_api.v1.test_helpers.test_clocks.advance(monthly_clock.id, params={
        "frozen_time": monthly_clock.frozen_time + 24 * DAY})
    deliver_all(deliver_webhooks)
    upcoming = db.session.scalar(db.select(db.func.count(WebhookEvent.id)).where(
        WebhookEvent.type == "invoice.upcoming", WebhookEvent.status == "processed"))
    assert upcoming == 2
    reminders = mails(outbox, "renews soon")
    assert [m["To"] for m in reminders] == [yearly_user.email]
    text, _html = parts(reminders[0])
    assert time.strftime("%d %b %Y", time.gmtime(renews_at)) in text and "$490.00" in text


def test_cancellation_notice(app, stripe_api, make_user, deliver_webhooks, outbox):
    sync_catalog()
    user = make_user()
    clock = stripe_api.v1.test_helpers.test_clocks.create(params={"frozen_time": int(time.time())})
    subscription = stripe_api.v1.subscriptions.create(params={
        "customer": clock_customer(stripe_api, user.account, clock.id),
        "items": [{"price": price_id(stripe_api, "pro_month")}]})
    stripe_api.v1.subscriptions.cancel(subscription.id)
    deliver_all(deliver_webhooks)
    notices = mails(outbox, "has been canceled")
    assert len(notices) == 1 and notices[0]["To"] == user.email
    text, html = parts(notices[0])
    assert "Pro" in text and "Subscribe again" in html
