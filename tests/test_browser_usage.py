"""A customer creates an API key, sends usage with it over HTTP, and watches the Usage page:
the meters, the projection, the threshold banner, the chart, and the htmx refresh."""
from __future__ import annotations

import json
import time
import urllib.request

import pytest

from tests.test_browser_billing import buy, register

pytestmark = pytest.mark.browser


def send_usage(base: str, secret: str, events: list[dict]) -> dict:
    """POST a batch to the live portal's usage API with the key; return the answer."""
    request = urllib.request.Request(
        f"{base}/api/v1/usage", data=json.dumps({"events": events}).encode(), method="POST",
        headers={"Authorization": f"Bearer {secret}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
        return json.loads(response.read())


def test_key_events_meters_projection_and_chart(portal, page):
    base = portal["url"]
    register(page, base, "metered@example.com")
    buy(page, base, "starter", "month")

    page.goto(f"{base}/billing/")
    page.get_by_role("link", name="API keys").click()
    page.get_by_label("Key name").fill("browser test")
    page.get_by_role("button", name="Create key").click()
    secret = page.locator("#new-key-secret").inner_text().strip()
    assert secret.startswith("bp_")

    # Stamped now, after the subscription began: an earlier time can fall in the hour before
    # the period's first hour when the test runs just after a full hour, and count nowhere.
    now = int(time.time())
    answer = send_usage(base, secret, [
        {"meter": "api_calls", "quantity": 20000, "timestamp": now, "identifier": "b-1"},
        {"meter": "api_calls", "quantity": 21000, "timestamp": now, "identifier": "b-2"},
        {"meter": "storage_gb", "quantity": 3, "timestamp": now, "identifier": "b-3"}])
    assert (answer["accepted"], answer["duplicates"], answer["rejected"]) == (3, 0, 0)

    page.clock.install()
    page.get_by_role("link", name="Usage", exact=True).click()
    page.wait_for_url(f"{base}/billing/usage")
    calls = page.locator("#meter-api_calls")
    assert "41,000" in calls.inner_text()
    assert "of 50,000 API calls included (82%)" in calls.inner_text()
    bar = calls.get_by_role("progressbar", name="API calls")
    assert bar.get_attribute("aria-valuenow") == "82"
    # 41,000 calls minutes into a month project far past the 50,000 included.
    projected = int(calls.locator("[data-projected]").get_attribute("data-projected"))
    assert projected > 50000 and "over," in calls.inner_text()
    assert "linear on the days elapsed" in page.locator("#projection-method").inner_text()
    invoice = page.locator("#projected-invoice").inner_text()
    assert "Starter plan $19.00" in invoice
    banner = page.locator("[data-usage-threshold='api_calls:80']")
    assert "80% of what your plan includes" in banner.inner_text()

    chart = page.get_by_role("img", name="API calls per day")
    assert chart.is_visible()
    assert page.locator("#chart-api_calls rect.bar.current").count() >= 1
    page.locator("#chart-api_calls summary").click()
    table = page.locator("#chart-api_calls table").inner_text()
    assert "41,000" in table

    # The cards refresh on their own (htmx, every 30 s) without reloading the page.
    page.evaluate("window.notReloaded = true")
    send_usage(base, secret, [{"meter": "api_calls", "quantity": 10000,
                               "timestamp": now, "identifier": "b-4"}])
    page.clock.fast_forward("00:31")
    page.locator("#meter-api_calls [data-used='51000']").wait_for(timeout=10_000)
    assert "of 50,000 API calls included (102%)" in page.locator("#meter-api_calls").inner_text()
    assert page.evaluate("window.notReloaded") is True

    # The page fits a phone screen: the chart scales down, cards stack.
    page.set_viewport_size({"width": 360, "height": 740})
    page.reload()
    page.locator("#meter-api_calls").wait_for()
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
