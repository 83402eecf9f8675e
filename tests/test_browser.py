"""The portal started the way README says, driven by real headless Chromium."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.factories import free_port, skip_or_fail

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]
LOGIN_LINE = re.compile(r"^\s+(customer|admin|auditor)\s+(\S+)\s+(\S+)$", re.MULTILINE)


@pytest.fixture(scope="module")
def chromium():
    """Return a headless Debian Chromium driven by Playwright, or skip with how to get one."""
    if not os.path.exists(CHROMIUM):
        skip_or_fail("Chromium is not installed: run `apt-get install chromium` to enable "
                     "browser tests", "REQUIRE_BROWSER")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        skip_or_fail("Playwright is missing: pip install -e '.[test]'", "REQUIRE_BROWSER")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def portal(tmp_path_factory):
    """Start `flask --app app start` on a free port with its own instance folder."""
    instance = tmp_path_factory.mktemp("live-instance")
    port = free_port()
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("STRIPE_", "DATABASE_URL", "REDIS_URL", "PORTAL_"))}
    env["INSTANCE_PATH"] = str(instance)
    log_path = instance / "server.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "app", "start", "--port", str(port)],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{base}/health", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            process.wait()
            pytest.fail(f"portal did not start:\n{log_path.read_text()}")
        time.sleep(0.2)
    output = log_path.read_text()
    logins = {role: (email, password) for role, email, password in LOGIN_LINE.findall(output)}
    yield {"url": base, "logins": logins, "output": output}
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture
def page(chromium):
    """Return a fresh browser page (its own cookies)."""
    context = chromium.new_context()
    page = context.new_page()
    yield page
    context.close()


def sign_in(page, base: str, email: str, password: str) -> None:
    """Sign in through the login form."""
    page.goto(f"{base}/auth/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


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
    page.wait_for_url(f"{base}/billing/")
    assert page.get_by_role("heading", name="Billing for Browser Co").is_visible()
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{base}/auth/login")
    assert page.get_by_text("Signed out.").is_visible()
    sign_in(page, base, "browser@example.com", "a long browser password")
    page.wait_for_url(f"{base}/billing/")
    assert page.get_by_role("heading", name="Billing for Browser Co").is_visible()


def test_demo_logins_work_and_navigation_fits_the_role(portal, page):
    base = portal["url"]
    email, password = portal["logins"]["customer"]
    sign_in(page, base, email, password)
    page.wait_for_url(f"{base}/billing/")
    assert page.get_by_role("link", name="Plans", exact=True).is_visible()
    assert page.get_by_role("link", name="Audit log").count() == 0
    page.get_by_role("button", name="Sign out").click()

    email, password = portal["logins"]["auditor"]
    sign_in(page, base, email, password)
    page.wait_for_url(f"{base}/admin/")
    assert page.get_by_role("link", name="Demo Company").is_visible()
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
