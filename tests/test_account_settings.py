"""Account settings: billing details and tax ids saved to the Stripe customer and mirrored,
shown on later invoices; reminder preferences; a member's email change confirmed by link."""
from __future__ import annotations

import re
from email import policy
from email.parser import BytesParser

from portal.extensions import db
from portal.models import Account, TaxId, User
from tests.helpers import csrf_from
from tests.invoice_support import bill, deliver_all, signed_in

DETAILS = {"name": "Acme", "legal_name": "Acme Σύμβουλοι ΙΚΕ", "billing_email": "AP@acme.example",
           "line1": "Odos 5", "line2": "", "postal_code": "10558", "city": "Athens",
           "state": "", "country": "GR"}


def post(client, path: str, data: dict):
    return client.post(path, data={**data, "csrf_token": csrf_from(client, "/billing/settings")})


def test_billing_details_go_to_stripe_the_mirror_and_later_invoices(
        app, stripe_api, make_user, deliver_webhooks, outbox):
    user = make_user()
    client = signed_in(app, user)
    page = client.get("/billing/settings").get_data(as_text=True)
    assert '<option value="GR">Greece</option>' in page
    assert post(client, "/billing/settings/details", DETAILS).status_code == 303
    account = db.session.get(Account, user.account_id)
    customer = stripe_api.v1.customers.retrieve(account.stripe_customer_id)
    assert (customer.name, customer.email) == ("Acme Σύμβουλοι ΙΚΕ", "ap@acme.example")
    assert (customer.address.city, customer.address.country) == ("Athens", "GR")
    db.session.expire_all()
    account = db.session.get(Account, user.account_id)
    assert (account.name, account.legal_name, account.billing_email) == (
        "Acme", "Acme Σύμβουλοι ΙΚΕ", "ap@acme.example")
    assert account.address["postal_code"] == "10558"

    response = post(client, "/billing/settings/tax-ids", {"type": "eu_vat",
                                                           "value": "EL 123456789"})
    assert response.status_code == 303
    deliver_all(deliver_webhooks)
    row = db.session.scalar(db.select(TaxId).where(TaxId.account_id == account.id))
    assert (row.type, row.value, row.country) == ("eu_vat", "EL123456789", "GR")
    assert [t.value for t in stripe_api.v1.customers.tax_ids.list(
        account.stripe_customer_id).data] == ["EL123456789"]

    invoice = bill(stripe_api, deliver_webhooks, account, [("Advice", 5000)], card="pm_card_visa")
    shown = client.get(f"/billing/invoices/{invoice.stripe_invoice_id}").get_data(as_text=True)
    assert "Acme Σύμβουλοι ΙΚΕ" in shown and "10558 Athens" in shown
    assert "EU VAT: EL123456789" in shown and "ap@acme.example" in shown
    receipt = BytesParser(policy=policy.default).parsebytes(
        next(outbox.glob("*.eml")).read_bytes())
    assert receipt["To"] == "ap@acme.example"  # billing mail goes to the billing email

    removed = post(client, "/billing/settings/tax-ids/remove", {"tax_id": row.stripe_tax_id})
    assert removed.status_code == 303
    assert db.session.scalar(db.select(TaxId)) is None
    assert stripe_api.v1.customers.tax_ids.list(account.stripe_customer_id).data == []
    # Finalized invoices keep the buyer they were issued to.
    again = client.get(f"/billing/invoices/{invoice.stripe_invoice_id}").get_data(as_text=True)
    assert "EU VAT: EL123456789" in again


def test_badly_formed_tax_ids_and_details_get_a_clear_400(app, make_user, stripe_api):
    user = make_user()
    client = signed_in(app, user)
    for kind, value in (("gb_vat", "GB12"), ("us_ein", "12-34"), ("eu_vat", "XX123456789"),
                        ("made_up", "123")):
        response = post(client, "/billing/settings/tax-ids", {"type": kind, "value": value})
        assert response.status_code == 400, (kind, value)
        body = response.get_data(as_text=True)
        assert "does not look like a valid" in body or "Not a valid choice" in body
    bad = post(client, "/billing/settings/details", {**DETAILS, "country": "XX",
                                                       "billing_email": "nope"})
    assert bad.status_code == 400
    assert db.session.scalar(db.select(TaxId)) is None
    for ok_kind, ok_value in (("gb_vat", "GB123456789"), ("us_ein", "12-3456789")):
        assert post(client, "/billing/settings/tax-ids",
                    {"type": ok_kind, "value": ok_value}).status_code == 303


def test_reminder_preference_is_saved(app, make_user):
    user = make_user()
    client = signed_in(app, user)
    assert post(client, "/billing/settings/preferences", {}).status_code == 303
    assert db.session.get(Account, user.account_id).reminder_emails is False
    assert post(client, "/billing/settings/preferences",
                {"reminder_emails": "y"}).status_code == 303
    db.session.expire_all()
    assert db.session.get(Account, user.account_id).reminder_emails is True


def test_email_change_waits_for_the_link_sent_to_the_new_address(app, make_user, outbox):
    user = make_user(email="old@example.com")
    client = signed_in(app, user)
    wrong = post(client, "/billing/settings/email", {"new_email": "new@example.com",
                                                     "password": "not it"})
    assert wrong.status_code == 400 and "password is not right" in wrong.get_data(as_text=True)
    taken = make_user(email="taken@example.com")
    assert post(client, "/billing/settings/email", {
        "new_email": taken.email, "password": "correct horse battery"}).status_code == 400
    response = post(client, "/billing/settings/email", {
        "new_email": "New@Example.com", "password": "correct horse battery"})
    assert response.status_code == 303
    assert db.session.get(User, user.id).email == "old@example.com"
    message = BytesParser(policy=policy.default).parsebytes(
        next(outbox.glob("*.eml")).read_bytes())
    assert message["To"] == "new@example.com"
    link = re.search(r"http://\S+/billing/settings/email/confirm/(\S+)",
                     message.get_body(("plain",)).get_content())
    token = link.group(1)
    # Another member cannot use the link.
    other = signed_in(app, make_user())
    other.get(f"/billing/settings/email/confirm/{token}")
    assert db.session.get(User, user.id).email == "old@example.com"
    client.get(f"/billing/settings/email/confirm/{token}")
    db.session.expire_all()
    assert db.session.get(User, user.id).email == "new@example.com"
    # The same link cannot be used twice, nor a tampered one at all.
    replay = client.get(f"/billing/settings/email/confirm/{token}", follow_redirects=True)
    assert "already used" in replay.get_data(as_text=True)
    tampered = client.get(f"/billing/settings/email/confirm/{token[:-2]}xx",
                          follow_redirects=True)
    assert "not valid" in tampered.get_data(as_text=True)


def test_settings_are_for_customers_only(app, make_user):
    from portal.models import Role

    staff = signed_in(app, make_user(Role.ADMIN))
    assert staff.get("/billing/settings").status_code == 403
