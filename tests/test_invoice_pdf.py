"""Invoice PDFs: content in USD, JPY and KWD, long invoices over pages, fonts, caching and
ETags, and a renderer that reads nothing outside the portal's own folders."""
from __future__ import annotations

import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from portal.extensions import db
from portal.models import Charge, Invoice, Role
from portal.services.pdf import REFUSED, html_to_pdf, link_callback
from tests.invoice_support import bill, deliver_all, flat, pdf_pages, signed_in

BERLIN = {"line1": "Hauptstr. 1", "city": "Berlin", "postal_code": "10115", "country": "DE"}


def pdf_of(client, invoice: Invoice, **headers):
    """GET an invoice's PDF."""
    return client.get(f"/billing/invoices/{invoice.stripe_invoice_id}/pdf", headers=headers)


@pytest.mark.parametrize(("currency", "lines", "amounts", "total"), [
    ("usd", [("Consulting, March", 123456), ("Setup fee", 500)], ["$1,234.56", "$5.00"],
     "$1,239.56"),
    ("jpy", [("年間サポート Jahres-Support", 1500), ("Onboarding", 20000)],
     ["¥1,500", "¥20,000"], "¥21,500"),
    ("kwd", [("Hosting", 1250), ("Bandwidth", 3)], ["KWD1.250", "KWD0.003"], "KWD1.253"),
])
def test_pdf_shows_number_buyer_lines_and_money_in_the_currency(
        app, client, stripe_api, make_user, login, deliver_webhooks, currency, lines, amounts,
        total):
    user = make_user()
    invoice = bill(stripe_api, deliver_webhooks, user.account, lines, currency=currency,
                   name="Ακμή Ελλάς · Привет Мир · Zoë Ørsted", address=BERLIN,
                   tax_ids=(("eu_vat", "DE123456789"),))
    assert invoice.status == "paid"
    login(user)
    response = pdf_of(client, invoice)
    assert response.status_code == 200
    assert response.mimetype == "application/pdf"
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="invoice-{invoice.number}.pdf"')
    text = flat("".join(pdf_pages(response.data)))
    assert invoice.number in text and "PAID" in text
    assert "Ακμή Ελλάς · Привет Мир · Zoë Ørsted" in text
    assert "EU VAT: DE123456789" in text and "10115 Berlin" in text
    for (description, _amount), shown in zip(lines, amounts, strict=True):
        if currency != "jpy":  # the CJK part is outside DejaVu; the Latin part is checked
            assert description in text
        assert shown in text
    assert f"Total {total}" in text
    assert "Visa ···· 4242" in text


def test_fonts_are_embedded_and_cover_greek_cyrillic_and_currency_signs(app):
    import io

    from pypdf import PdfReader

    pdf = html_to_pdf('<html><body style="font-family: dejavu">'
                      "Ωμέγα Привет € ₽ ₹ ₺ ¥ £</body></html>")
    reader = PdfReader(io.BytesIO(pdf))
    fonts = [font.get_object() for font in reader.pages[0]["/Resources"]["/Font"].values()]
    embedded = [f for f in fonts if "DejaVuSans" in f["/BaseFont"]]
    assert embedded, [f["/BaseFont"] for f in fonts]
    descriptors = [(font["/DescendantFonts"][0].get_object() if "/DescendantFonts" in font
                    else font)["/FontDescriptor"].get_object() for font in embedded]
    assert all("/FontFile2" in descriptor for descriptor in descriptors)
    assert "Ωμέγα Привет € ₽ ₹ ₺ ¥ £" in reader.pages[0].extract_text()


def test_a_120_line_invoice_runs_over_3_pages_with_the_header_repeated(
        app, client, stripe_api, make_user, login, deliver_webhooks):
    user = make_user()
    lines = [(f"Service item number {n:03d}", 1000 + n) for n in range(1, 121)]
    invoice = bill(stripe_api, deliver_webhooks, user.account, lines)
    assert len(invoice.lines) == 120  # the webhook fetched the lines past the first page
    login(user)
    pages = pdf_pages(pdf_of(client, invoice).data)
    assert len(pages) == 3
    for number, page in enumerate(pages, start=1):
        text = flat(page)
        assert "Description Period Qty Unit price Amount" in text
        assert re.search(rf"Page {number} / 3\b", text), text[:200]
    everything = flat(" ".join(pages))
    for description, amount in lines:
        assert description in everything
        assert f"${amount / 100:,.2f}" in everything


def test_letter_paper_when_configured(app, client, stripe_api, make_user, login, deliver_webhooks):
    import io

    from pypdf import PdfReader

    user = make_user()
    invoice = bill(stripe_api, deliver_webhooks, user.account, [("Support", 900)])
    login(user)
    a4 = PdfReader(io.BytesIO(pdf_of(client, invoice).data)).pages[0].mediabox
    app.config["PDF_PAGE_SIZE"] = "Letter"
    letter = PdfReader(io.BytesIO(pdf_of(client, invoice).data)).pages[0].mediabox
    assert (round(float(a4.width)), round(float(a4.height))) == (595, 842)
    assert (round(float(letter.width)), round(float(letter.height))) == (612, 792)


def test_cached_once_answered_304_and_a_refund_makes_a_new_version(
        app, client, stripe_api, make_user, login, deliver_webhooks):
    user = make_user()
    invoice = bill(stripe_api, deliver_webhooks, user.account, [("Annual plan", 49000)])
    login(user)
    cache = Path(app.config["PDF_CACHE_DIR"])
    first = pdf_of(client, invoice)
    etag = first.headers["ETag"]
    stored = list(cache.glob(f"{invoice.stripe_invoice_id}-*.pdf"))
    assert len(stored) == 1 and stored[0].read_bytes() == first.data
    stored[0].write_bytes(stored[0].read_bytes() + b"%cached")  # marks what the cache serves
    again = pdf_of(client, invoice)
    assert again.headers["ETag"] == etag and again.data.endswith(b"%cached")
    not_modified = pdf_of(client, invoice, **{"If-None-Match": etag})
    assert not_modified.status_code == 304 and not_modified.data == b""

    charge = db.session.scalar(db.select(Charge).where(
        Charge.stripe_invoice_id == invoice.stripe_invoice_id))
    stripe_api.v1.refunds.create(params={"charge": charge.stripe_charge_id, "amount": 10000},
                             options={"idempotency_key": f"test-refund-{charge.id}"})
    deliver_all(deliver_webhooks)
    after = pdf_of(client, invoice, **{"If-None-Match": etag})
    assert after.status_code == 200 and after.headers["ETag"] != etag
    text = flat("".join(pdf_pages(after.data)))
    assert "Refund (succeeded) −$100.00" in text and "partially refunded" in text
    assert len(list(cache.glob(f"{invoice.stripe_invoice_id}-*.pdf"))) == 2


def test_a_draft_is_never_cached(app, client, stripe_api, make_user, login, deliver_webhooks):
    customer = make_user()
    account = customer.account
    from portal.services.customers import ensure_stripe_customer

    customer_id = ensure_stripe_customer(account)
    stripe_api.v1.invoice_items.create(params={"customer": customer_id, "amount": 700,
                                           "currency": "usd", "description": "Draft work"})
    draft = stripe_api.v1.invoices.create(params={"customer": customer_id, "auto_advance": False,
                                              "pending_invoice_items_behavior": "include"})
    deliver_all(deliver_webhooks)
    assert signed_in(app, customer).get(f"/billing/invoices/{draft.id}/pdf").status_code == 404
    admin = signed_in(app, make_user(Role.ADMIN))
    response = admin.get(f"/billing/invoices/{draft.id}/pdf")
    assert response.status_code == 200 and "ETag" not in response.headers
    assert "Draft work" in flat(pdf_pages(response.data)[0])
    assert not list(Path(app.config["PDF_CACHE_DIR"]).glob(f"{draft.id}-*"))


class CountingHandler(BaseHTTPRequestHandler):
    """Counts every request; answers with a tiny PNG."""

    hits: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        CountingHandler.hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.end_headers()
        self.wfile.write(Path("static/img/logo.png").read_bytes())

    def log_message(self, *args) -> None:
        """Stay quiet."""


@pytest.fixture
def image_server():
    """Return the base URL of a local server that counts requests."""
    CountingHandler.hits = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), CountingHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_remote_image_in_a_customers_name_is_never_fetched(
        app, client, stripe_api, make_user, login, deliver_webhooks, image_server):
    name = f'Evil <img src="{image_server}/name.png"> Corp'
    user = make_user()
    invoice = bill(stripe_api, deliver_webhooks, user.account, [("Support", 900)], name=name)
    login(user)
    response = pdf_of(client, invoice)
    assert response.status_code == 200
    assert "Evil <img" in flat(pdf_pages(response.data)[0])  # printed as text, not markup
    # Even raw markup handed to the renderer fetches nothing: the link callback refuses it.
    with app.test_request_context("/"):
        html_to_pdf(f'<html><body><img src="{image_server}/raw.png">'
                    f'<img src="/etc/passwd"><p>x</p></body></html>')
    assert CountingHandler.hits == []


def test_link_callback_allows_only_the_template_and_static_folders(app):
    with app.test_request_context("/"):
        assert link_callback("/static/css/print/invoice.css").endswith(
            "static/css/print/invoice.css")
        assert link_callback("fonts/dejavu/DejaVuSans.ttf").endswith("DejaVuSans.ttf")
        for outside in ("http://example.com/logo.png", "https://169.254.169.254/x",
                        "/etc/passwd", "file:///etc/passwd", "/static/../portal/config.py",
                        "../../etc/hosts", "//example.com/x.png"):
            assert link_callback(outside) == REFUSED, outside


def test_renders_outside_a_request_as_an_rq_worker_does(app, stripe_api, make_user,
                                                         deliver_webhooks):
    from flask import has_request_context

    from portal.services.pdf import render_invoice_pdf
    from portal.services.statements import invoice_statement

    invoice = bill(stripe_api, deliver_webhooks, make_user().account, [("Support", 900)])
    db.session.commit()
    rendered = {}

    def worker() -> None:  # a new thread starts with no request context, as a worker does
        with app.app_context():
            rendered["request"] = has_request_context()
            rendered["pdf"] = render_invoice_pdf(invoice_statement(
                db.session.get(Invoice, invoice.id)))
            db.session.remove()

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    text = flat(pdf_pages(rendered["pdf"])[0])
    assert rendered["request"] is False
    assert invoice.number in text and "$9.00" in text


@pytest.mark.parametrize("count", [38, 44])
def test_page_totals_match_the_pages_near_a_page_break(app, client, stripe_api, make_user,
                                                       login, deliver_webhooks, count):
    user = make_user()
    invoice = bill(stripe_api, deliver_webhooks, user.account,
                   [(f"Line {n}", 100 + n) for n in range(count)])
    login(user)
    pages = pdf_pages(pdf_of(client, invoice).data)
    for number, page in enumerate(pages, start=1):
        assert re.search(rf"Page {number} / {len(pages)}\b", flat(page)), flat(page)[:120]
