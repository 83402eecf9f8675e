"""Builders for invoices made in the sandbox and mirrored through real webhooks."""
from __future__ import annotations

import io
import re

from flask import g
from flask.testing import FlaskClient
from pypdf import PdfReader

from portal.extensions import db
from portal.models import Account, Invoice
from portal.services.customers import ensure_stripe_customer


def deliver_all(deliver_webhooks) -> int:
    """Post every due webhook (a delivery pass posts at most 100)."""
    total = delivered = deliver_webhooks()
    while delivered:
        delivered = deliver_webhooks()
        total += delivered
    return total


def bill(stripe_api, deliver_webhooks, account: Account, lines: list[tuple[str, int]],
         currency: str = "usd", card: str | None = "pm_card_visa", pay: bool = True,
         tax_ids: tuple[tuple[str, str], ...] = (), name: str | None = None,
         address: dict | None = None) -> Invoice:
    """Invoice the account for `lines` (description, amount) at Stripe, pay it, mirror it."""
    customer_id = billing_customer(stripe_api, account, card=card, tax_ids=tax_ids, name=name,
                                   address=address)
    for description, amount in lines:
        stripe_api.v1.invoice_items.create(params={
            "customer": customer_id, "amount": amount, "currency": currency,
            "description": description})
    invoice = stripe_api.v1.invoices.create(params={
        "customer": customer_id, "currency": currency, "auto_advance": False,
        "collection_method": "charge_automatically",
        "pending_invoice_items_behavior": "include"})
    invoice = stripe_api.v1.invoices.finalize_invoice(invoice.id)
    if pay and invoice.status == "open":
        stripe_api.v1.invoices.pay(invoice.id,
                                   options={"idempotency_key": f"test-pay-{invoice.id}"})
    deliver_all(deliver_webhooks)
    db.session.expire_all()
    return db.session.scalar(db.select(Invoice).where(Invoice.stripe_invoice_id == invoice.id))


def billing_customer(stripe_api, account: Account, card: str | None = "pm_card_visa",
                     tax_ids: tuple[tuple[str, str], ...] = (), name: str | None = None,
                     address: dict | None = None) -> str:
    """Give the account's Stripe customer a default card and billing details; return its id."""
    customer_id = ensure_stripe_customer(account)
    updates: dict = {}
    if name:
        updates["name"] = name
    if address:
        updates["address"] = address
    if card:
        method = stripe_api.v1.payment_methods.attach(card, params={"customer": customer_id})
        updates["invoice_settings"] = {"default_payment_method": method.id}
    if updates:
        stripe_api.v1.customers.update(customer_id, params=updates)
    for kind, value in tax_ids:
        stripe_api.v1.customers.tax_ids.create(customer_id, params={"type": kind, "value": value})
    return customer_id


def pdf_pages(content: bytes) -> list[str]:
    """Return the text of each page of a PDF."""
    return [page.extract_text() for page in PdfReader(io.BytesIO(content)).pages]


def flat(text: str) -> str:
    """Return text with runs of whitespace collapsed (PDF extraction splits cells)."""
    return re.sub(r"\s+", " ", text)


class PersonClient(FlaskClient):
    """A test client for one person among several in a test.

    Tests run inside one app context, where Flask-Login and Flask-WTF cache the signed-in
    user and the CSRF token in `g`; each request here starts without those caches, so it
    reads its own session cookie.
    """

    def open(self, *args, **kwargs):
        for cached in ("_login_user", "csrf_token"):
            g.pop(cached, None)
        try:
            return super().open(*args, **kwargs)
        finally:
            for cached in ("_login_user", "csrf_token"):
                g.pop(cached, None)


def signed_in(app, user, password: str | None = None):
    """Return a new test client signed in as `user` (one client per person)."""
    from tests.factories import DEFAULT_PASSWORD
    from tests.helpers import csrf_from

    client = PersonClient(app, app.response_class, use_cookies=True)
    token = csrf_from(client, "/auth/login")
    response = client.post("/auth/login", data={
        "email": user.email, "password": password or DEFAULT_PASSWORD, "csrf_token": token})
    assert response.status_code == 302, response.get_data(as_text=True)
    return client
