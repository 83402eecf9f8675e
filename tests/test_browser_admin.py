"""An admin finds a customer by email and refunds part of a paid invoice with a password
step-up; the customer then sees the refund on the invoice page and in its PDF. Headless
Chromium against the portal started as README says (embedded sandbox, webhooks on).

Stripe: a partial refund of a charge (docs.stripe.com/refunds#issuing) leaves the invoice
paid, with the refund listed on the charge (docs.stripe.com/api/refunds/object).
"""
from __future__ import annotations

import io
import re

import pytest
from pypdf import PdfReader

from tests.helpers import sign_in
from tests.test_browser_billing import api, buy, customer_of, register  # noqa: F401

pytestmark = pytest.mark.browser

CUSTOMER = "refund-buyer@example.com"


def pdf_text(path) -> str:
    """Return a downloaded PDF's text with whitespace runs collapsed."""
    with open(path, "rb") as handle:
        reader = PdfReader(io.BytesIO(handle.read()))
    return re.sub(r"\s+", " ", " ".join(page.extract_text() for page in reader.pages))


def test_admin_finds_a_customer_refunds_part_and_the_customer_sees_it(
        portal, chromium, api):  # noqa: F811
    base = portal["url"]
    customer_page = chromium.new_context().new_page()
    register(customer_page, base, CUSTOMER)
    buy(customer_page, base, "pro", "month")
    invoice = api.v1.invoices.list(params={"customer": customer_of(api, CUSTOMER).id}).data[0]
    assert invoice.status == "paid" and invoice.amount_paid == 4900

    admin_email, admin_password = portal["logins"]["admin"]
    admin = chromium.new_context().new_page()
    sign_in(admin, base, admin_email, admin_password)
    admin.wait_for_url(f"{base}/admin/")
    admin.get_by_label("Search").fill(CUSTOMER)
    admin.get_by_role("button", name="Search").click()
    rows = admin.locator("#accounts tr.account-row")
    rows.first.wait_for()
    assert rows.count() == 1
    rows.get_by_role("link", name="refund-buyer Ltd").click()

    # The payment arrives through webhooks: the page lists it once they are in.
    payments = admin.locator("#payments")
    for _attempt in range(30):
        if payments.count() and invoice.number in payments.inner_text():
            break
        admin.wait_for_timeout(500)
        admin.reload()
    row = payments.locator("tr", has_text=invoice.number)
    row.get_by_label("Amount").fill("12.50")
    row.get_by_label("Reason").select_option("requested_by_customer")
    row.get_by_label("Note").fill("Asked for a partial refund by phone")
    row.get_by_role("button", name="Review refund").click()

    admin.locator("#refund-summary").wait_for()
    assert admin.locator("#refundable").inner_text() == "$49.00"
    assert (f"We have refunded $12.50 of invoice {invoice.number} ($49.00)"
            in admin.locator("#customer-notice").inner_text())
    # Moving money asks for the admin's password again: a wrong one refunds nothing.
    admin.get_by_label("Your password").fill("not my password")
    admin.get_by_role("button", name="Refund $12.50").click()
    admin.get_by_text("Type your password to confirm the refund.").wait_for()
    assert api.v1.refunds.list(params={"charge": invoice_charge(api, invoice)}).data == []
    admin.get_by_label("Your password").fill(admin_password)
    admin.get_by_role("button", name="Refund $12.50").click()
    admin.get_by_text(re.compile(r"Refund #\d+ sent to Stripe \(succeeded\)\.")).wait_for()
    refunds = api.v1.refunds.list(params={"charge": invoice_charge(api, invoice)}).data
    assert [(refund.amount, refund.status) for refund in refunds] == [(1250, "succeeded")]

    customer_page.goto(f"{base}/billing/invoices")
    customer_page.get_by_role("link", name=invoice.number).click()
    moves = customer_page.locator("#money-moves")
    moves.wait_for()
    assert "Refund (succeeded)" in moves.inner_text() and "−$12.50" in moves.inner_text()
    assert "partially refunded" in customer_page.locator(".settlement").inner_text()
    with customer_page.expect_download() as download_info:
        customer_page.get_by_role("link", name="Download PDF").click()
    text = pdf_text(download_info.value.path())
    assert invoice.number in text and "Refund (succeeded) −$12.50" in text
    assert "partially refunded" in text


def invoice_charge(stripe_api, invoice) -> str:
    """Return the id of the customer's one charge: the payment of the invoice."""
    [charge] = stripe_api.v1.charges.list(params={"customer": invoice.customer}).data
    assert charge.amount == invoice.amount_paid
    return charge.id
