"""The portal started the way README says, driven by real headless Chromium."""
from __future__ import annotations

import pytest

from tests.helpers import sign_in

pytestmark = pytest.mark.browser


def test_start_prints_url_and_demo_logins(portal):
    assert f"Billing portal: {portal['url']}/" in portal["output"]
    assert set(portal["logins"]) == {"customer", "admin", "auditor"}


def test_register_logout_login_and_see_dashboard(portal, page):
    base = portal["url"]
    page.goto(f"{base}/")
    page.get_by_role("link", name="Create account").first.click()
    page.get_by_label("Company or account name").fill("Browser Co")
    page.get_by_label("Email").fill("browser@example.com")
    page.get_by_label("Password", exact=True).fill("a long browser password")
    page.get_by_label("Repeat password").fill("a long browser password")
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url(f"{base}/auth/login")
    page.get_by_text("We sent a message to that address").wait_for()
    sign_in(page, base, "browser@example.com", "a long browser password")
    page.wait_for_url(f"{base}/billing/")
    page.get_by_role("heading", name="Billing for Browser Co").wait_for()
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{base}/auth/login")
    page.get_by_text("Signed out.").wait_for()
    sign_in(page, base, "browser@example.com", "a long browser password")
    page.wait_for_url(f"{base}/billing/")
    page.get_by_role("heading", name="Billing for Browser Co").wait_for()


def test_demo_logins_work_and_navigation_fits_the_role(portal, page):
    base = portal["url"]
    email, password = portal["logins"]["customer"]
    sign_in(page, base, email, password)
    page.wait_for_url(f"{base}/billing/")
    page.get_by_role("link", name="Plans", exact=True).wait_for()
    assert page.get_by_role("link", name="Audit log").count() == 0
    page.get_by_role("button", name="Sign out").click()

    email, password = portal["logins"]["auditor"]
    sign_in(page, base, email, password)
    page.wait_for_url(f"{base}/admin/")
    page.get_by_role("link", name="Demo Company").wait_for()
    page.get_by_role("link", name="Demo Company").click()
    assert page.get_by_role("button", name="Disable").count() == 0
    page.get_by_role("button", name="Sign out").click()

    email, password = portal["logins"]["admin"]
    sign_in(page, base, email, password)
    page.wait_for_url(f"{base}/admin/")
    page.get_by_role("link", name="Demo Company").click()
    assert page.get_by_role("button", name="Disable").count() == 1


def test_plan_interval_switch_swaps_cards_without_reload(portal, page):
    base = portal["url"]
    email, password = portal["logins"]["customer"]
    sign_in(page, base, email, password)
    page.goto(f"{base}/billing/plans")
    page.evaluate("window.__notReloaded = true")
    pro = page.locator("[data-plan=pro]")
    assert "$49.00" in pro.inner_text()
    page.get_by_role("link", name="Yearly").click()
    page.wait_for_url(f"{base}/billing/plans?interval=year")
    page.locator("[data-plan=pro]", has_text="$490.00").wait_for()
    assert page.evaluate("window.__notReloaded") is True


def test_pages_fit_a_phone_screen(portal, chromium):
    context = chromium.new_context(viewport={"width": 360, "height": 740})
    page = context.new_page()
    try:
        for path in ("/auth/login", "/auth/register", "/auth/forgot", "/no-such-page"):
            page.goto(portal["url"] + path)
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 360, (path, width)
    finally:
        context.close()
