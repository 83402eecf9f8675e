"""A customer with a paid invoice finds it under Invoices and downloads its PDF, in headless
Chromium against the portal started as README says."""
from __future__ import annotations

import io
import re

import pytest
from pypdf import PdfReader

from tests.test_browser_billing import api, buy, customer_of, register  # noqa: F401

pytestmark = pytest.mark.browser


def test_customer_opens_invoices_and_downloads_the_pdf(portal, page, api):  # noqa: F811
    base = portal["url"]
    register(page, base, "pdf-buyer@example.com")
    page.get_by_role("link", name="Settings").click()
    page.get_by_label("Legal name (on invoices)").fill("Пример ООО")
    page.get_by_label("Address", exact=True).fill("1 High Street")
    page.get_by_label("City").fill("Leeds")
    page.get_by_label("Postal code").fill("LS1 1AA")
    page.get_by_label("Country").select_option("GB")
    page.get_by_role("button", name="Save billing details").click()
    page.get_by_text("Billing details saved.").wait_for()
    page.get_by_label("Type").select_option("gb_vat")
    page.get_by_label("Number").fill("GB 123 4567 89")
    page.get_by_role("button", name="Add tax id").click()
    page.get_by_text("Tax id added.").wait_for()

    buy(page, base, "pro", "month")
    customer = customer_of(api, "pdf-buyer@example.com")
    invoice = api.v1.invoices.list(params={"customer": customer.id}).data[0]
    assert invoice.status == "paid"

    page.goto(f"{base}/billing/")
    page.get_by_role("link", name="Invoices", exact=True).click()
    link = page.get_by_role("link", name=invoice.number)
    link.wait_for(timeout=15_000)
    assert "paid" in page.locator("#invoice-list").inner_text()
    link.click()
    page.get_by_role("heading", name=f"Invoice {invoice.number}").wait_for()
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download PDF").click()
    download = download_info.value
    assert download.suggested_filename == f"invoice-{invoice.number}.pdf"
    with open(download.path(), "rb") as handle:
        reader = PdfReader(io.BytesIO(handle.read()))
    text = re.sub(r"\s+", " ", " ".join(p.extract_text() for p in reader.pages))
    assert invoice.number in text and "PAID" in text
    for line in invoice.lines.data:
        assert line.description in text
        assert f"${line.amount / 100:,.2f}" in text
    assert f"Total ${invoice.total / 100:,.2f}" in text
    assert "GB VAT: GB123456789" in text and "Пример ООО" in text
