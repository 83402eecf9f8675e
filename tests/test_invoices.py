"""The Invoices page (keyset pages, filters, a fixed statement count) and one invoice's page:
seller, buyer as finalized, lines, tax by rate, credit, payments and refunds, and access."""
from __future__ import annotations

import re
from contextlib import contextmanager
from datetime import UTC, datetime

import pytest
from sqlalchemy import event

from portal.extensions import db
from portal.models import Charge, Role
from portal.services import sync
from portal.services.customers import ensure_stripe_customer
from tests.invoice_support import bill, billing_customer, deliver_all, signed_in

ROW = re.compile(r'href="/billing/invoices/(in_[A-Za-z0-9_]+)"')


def mirrored_invoices(account, count: int, start: datetime, step_days: int = 7) -> list[str]:
    """Mirror `count` invoices for the account through sync.invoice; return their ids."""
    customer_id = account.stripe_customer_id or f"cus_bench_{account.id}"
    if account.stripe_customer_id is None:
        sync.link_customer(account, customer_id)
    statuses = ("paid", "paid", "open", "void", "uncollectible")
    ids = []
    for n in range(count):
        created = int(start.timestamp()) + n * step_days * 86_400
        invoice_id = f"in_list_{account.id}_{n:05d}"
        status = statuses[n % len(statuses)]
        sync.invoice({
            "id": invoice_id, "object": "invoice", "customer": customer_id, "status": status,
            "number": f"LIST-{n:05d}", "currency": "eur", "created": created,
            "subtotal": 1000 + n, "total": 1000 + n, "amount_due": 1000 + n,
            "amount_paid": 1000 + n if status == "paid" else 0,
            "amount_remaining": 1000 + n if status == "open" else 0,
            "period_start": created, "period_end": created + 30 * 86_400,
            "lines": {"object": "list", "data": [], "has_more": False},
        }, version=created)
        ids.append(invoice_id)
    db.session.commit()
    return ids


@contextmanager
def counted_statements():
    """Count the SQL statements run inside the block."""
    statements: list[tuple[str, object]] = []

    def count(_conn, _cursor, statement, parameters, *_args):
        statements.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(db.engine, "before_cursor_execute", count)


def walk(client, url: str) -> list[str]:
    """Follow the htmx 'older invoices' links from `url`; return invoice ids in order."""
    seen: list[str] = []
    page = client.get(url).get_data(as_text=True)
    while True:
        seen += ROW.findall(page)
        more = re.search(r'hx-get="([^"]+)"', page)
        if not more:
            return seen
        page = client.get(more.group(1).replace("&amp;", "&"),
                          headers={"HX-Request": "true"}).get_data(as_text=True)
        assert "<html" not in page  # a fragment, not a page


def test_keyset_pages_walk_every_invoice_once_newest_first(app, make_user):
    user = make_user()
    ids = mirrored_invoices(user.account, 60, datetime(2024, 1, 3, tzinfo=UTC))
    client = signed_in(app, user)
    listed = walk(client, "/billing/invoices")
    assert listed == list(reversed(ids))
    first = client.get("/billing/invoices").get_data(as_text=True)
    assert len(ROW.findall(first)) == 25 and "Show older invoices" in first
    assert "€10.59" in first  # the newest (LIST-00059) total in its currency


def test_filters_by_status_and_year(app, make_user):
    user = make_user()
    ids = mirrored_invoices(user.account, 60, datetime(2024, 1, 3, tzinfo=UTC))
    client = signed_in(app, user)
    paid = walk(client, "/billing/invoices?status=paid")
    assert paid == [i for i in reversed(ids) if int(i[-5:]) % 5 in (0, 1)]
    in_2024 = walk(client, "/billing/invoices?year=2024")
    assert len(in_2024) == 52 and all(int(i[-5:]) < 52 for i in in_2024)
    both = walk(client, "/billing/invoices?status=void&year=2025")
    assert both == [i for i in reversed(ids) if int(i[-5:]) >= 52 and int(i[-5:]) % 5 == 3]
    assert client.get("/billing/invoices?status=draft").status_code == 400
    assert client.get("/billing/invoices?year=1234").status_code == 400
    assert client.get("/billing/invoices?after=nonsense",
                      headers={"HX-Request": "true"}).status_code == 400


def test_the_list_costs_the_same_statements_for_3_or_300_invoices(app, make_user):
    few, many = make_user(), make_user()
    mirrored_invoices(few.account, 3, datetime(2025, 1, 1, tzinfo=UTC))
    mirrored_invoices(many.account, 300, datetime(2019, 1, 1, tzinfo=UTC), step_days=1)
    few_client, many_client = signed_in(app, few), signed_in(app, many)
    counts = {}
    for name, client, url in (("few", few_client, "/billing/invoices"),
                              ("many", many_client, "/billing/invoices"),
                              ("many-deep", many_client, None)):
        if url is None:  # a page deep in the list: follow the cursor 8 pages in
            url = "/billing/invoices"
            for _ in range(8):
                page = many_client.get(url).get_data(as_text=True)
                url = re.search(r'hx-get="([^"]+)"', page).group(1).replace("&amp;", "&")
        client.get(url)  # warm
        with counted_statements() as statements:
            response = client.get(url)
        assert response.status_code == 200
        counts[name] = len(statements)
        listing = [(sql, params) for sql, params in statements if "FROM invoices" in sql
                   and "stripe_created DESC" in sql]
        assert len(listing) == 1
        sql, params = listing[0]
        # No OFFSET scan: SQLite spells LIMIT as "LIMIT ? OFFSET ?", always with offset 0.
        assert "OFFSET" not in sql.upper() or list(params)[-1] == 0
        if name == "many-deep":
            assert "(invoices.stripe_created, invoices.id) <" in sql
    assert counts["few"] == counts["many"] == counts["many-deep"], counts
    assert counts["few"] <= 8, counts


def test_invoice_page_shows_seller_buyer_lines_taxes_credit_payments_and_refunds(
        app, stripe_api, make_user, deliver_webhooks):
    app.config.update(SELLER_LEGAL_NAME="Seller GmbH", SELLER_TAX_ID="DE999999999",
                      SELLER_ADDRESS="Seestr. 9\n20095 Hamburg", SELLER_CONTACT="ar@seller.test")
    user = make_user()
    account = user.account
    customer_id = billing_customer(
        stripe_api, account, name="Kunde AG", tax_ids=(("eu_vat", "DE111111111"),),
        address={"line1": "Weg 2", "city": "Köln", "postal_code": "50667", "country": "DE"})
    stripe_api.v1.customers.update(customer_id, params={"balance": -500})  # credit of $5.00
    rate = stripe_api.v1.tax_rates.create(params={
        "display_name": "VAT", "percentage": 19, "inclusive": False, "country": "DE"})
    stripe_api.v1.invoice_items.create(params={
        "customer": customer_id, "amount": 10000, "currency": "usd",
        "description": "Consulting", "tax_rates": [rate.id]})
    draft = stripe_api.v1.invoices.create(params={
        "customer": customer_id, "auto_advance": False,
        "pending_invoice_items_behavior": "include"})
    final = stripe_api.v1.invoices.finalize_invoice(draft.id)
    stripe_api.v1.invoices.pay(final.id, options={"idempotency_key": f"t-pay-{final.id}"})
    deliver_all(deliver_webhooks)
    charge = db.session.scalar(db.select(Charge).where(Charge.stripe_invoice_id == final.id))
    stripe_api.v1.refunds.create(params={"charge": charge.stripe_charge_id, "amount": 2000})
    deliver_all(deliver_webhooks)
    client = signed_in(app, user)
    page = client.get(f"/billing/invoices/{final.id}").get_data(as_text=True)
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page))
    assert "Seller GmbH" in text and "DE999999999" in text and "20095 Hamburg" in text
    assert "Kunde AG" in text and "50667 Köln" in text and "EU VAT: DE111111111" in text
    assert "Consulting" in text and "$100.00" in text
    assert "VAT 19% $19.00" in text and "Total $119.00" in text
    assert "Credit applied −$5.00" in text and "Amount paid $114.00" in text
    assert "Visa ···· 4242" in text and "Refund (succeeded) −$20.00" in text
    assert "partially refunded" in text


@pytest.mark.parametrize("role", [Role.ADMIN, Role.AUDITOR])
def test_only_the_account_and_staff_see_an_invoice(app, stripe_api, make_user, deliver_webhooks,
                                                   role):
    owner = make_user()
    invoice = bill(stripe_api, deliver_webhooks, owner.account, [("Support", 900)])
    outsider = signed_in(app, make_user())
    for suffix in ("", "/pdf"):
        url = f"/billing/invoices/{invoice.stripe_invoice_id}{suffix}"
        assert outsider.get(url).status_code == 404
        assert outsider.get(f"/billing/invoices/in_doesnotexist{suffix}").status_code == 404
        assert signed_in(app, owner).get(url).status_code == 200
        assert signed_in(app, make_user(role)).get(url).status_code == 200
    assert invoice.stripe_invoice_id not in outsider.get("/billing/invoices").get_data(
        as_text=True)


def test_paid_from_credit_is_labelled(app, stripe_api, make_user, deliver_webhooks):
    user = make_user()
    customer_id = ensure_stripe_customer(user.account)
    stripe_api.v1.customers.update(customer_id, params={"balance": -5000})
    invoice = bill(stripe_api, deliver_webhooks, user.account, [("Small add-on", 1500)],
                   pay=False)
    assert invoice.status == "paid" and invoice.amount_paid == 0
    listing = signed_in(app, user).get("/billing/invoices").get_data(as_text=True)
    assert "paid from credit" in listing
