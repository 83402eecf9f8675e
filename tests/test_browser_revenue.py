"""An admin opens the revenue dashboard, narrows it with the htmx selector and downloads a
CSV, in headless Chromium against the portal started as README says."""
from __future__ import annotations

import csv
from datetime import UTC, datetime

import pytest

from tests.helpers import sign_in
from tests.test_browser_billing import api, buy, register  # noqa: F401

pytestmark = pytest.mark.browser


def test_admin_reads_the_revenue_dashboard_and_downloads_a_csv(portal, page, api):  # noqa: F811
    base = portal["url"]
    register(page, base, "revenue-buyer@example.com")
    buy(page, base, "pro", "month")  # 49.00 a month: new business this month
    page.context.clear_cookies()

    email, password = portal["logins"]["admin"]
    sign_in(page, base, email, password)
    page.get_by_role("link", name="Revenue", exact=True).click()
    page.get_by_role("heading", name="Revenue reports").wait_for()
    this_month = datetime.now(UTC).strftime("%Y-%m")
    page.locator("[data-figure=mrr]").wait_for()
    assert page.locator("[data-figure=mrr]").inner_text() == "$49.00"
    assert page.locator("[data-figure=arr]").inner_text() == "$588.00"
    assert page.locator("svg[role=img]").count() >= 2
    row = page.locator(f"#mrr-table tr[data-month='{this_month}']")
    assert row.locator("[data-kind=new_business]").inner_text() == "$49.00"

    # The selector swaps the report body through htmx: one month only, same figures.
    page.get_by_label("From", exact=True).fill(this_month)
    with page.expect_response(lambda response: "/admin/reports/" in response.url
                              and response.request.headers.get("hx-request") == "true"):
        page.get_by_role("button", name="Show").click()
    page.wait_for_function(
        "document.querySelectorAll('#mrr-table tbody tr').length === 1")
    assert f"first={this_month}" in page.url

    with page.expect_download() as download_info:
        page.locator("a[href*='table=mrr&']", has_text="CSV").click()
    download = download_info.value
    assert download.suggested_filename == f"mrr-usd-{this_month}-{this_month}.csv"
    with open(download.path(), newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["month"], r["new_business"], r["closing_mrr"]) for r in rows] == [
        (this_month, "4900", "4900")]
