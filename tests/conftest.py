"""Shared fixtures: a migrated database (SQLite, or PostgreSQL via TEST_DATABASE_URL),
the app, a client, and builders for users and signed-in sessions."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

from portal import create_app
from portal.config import normalise_database_url
from portal.extensions import db, limiter
from portal.models import User
from tests import factories
from tests.factories import DEFAULT_PASSWORD
from tests.helpers import clear_append_only_table, csrf_from, free_port, skip_or_fail


@pytest.fixture(autouse=True)
def portal_base_url(monkeypatch):
    """Give apps built in tests a public address, as production requires one."""
    monkeypatch.setenv("PORTAL_BASE_URL", "http://localhost")


@pytest.fixture(scope="session")
def database_url(tmp_path_factory) -> str:
    """Return the test database URL, migrated to the newest schema once per session."""
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        url = normalise_database_url(url)
        engine = create_engine(url)
        with engine.begin() as connection:
            # A clean slate: earlier runs may have left tables behind.
            for table in reversed(inspect(connection).get_table_names()):
                connection.execute(text(f'DROP TABLE IF EXISTS "{table}" CASCADE'))
        engine.dispose()
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'portal.db'}"
    os.environ.setdefault("INSTANCE_PATH", str(tmp_path_factory.mktemp("instance")))
    app = create_app(
        {"SQLALCHEMY_DATABASE_URI": url, "TESTING": True, "PORTAL_ENV": "testing",
         "SECRET_KEY": "session-setup"}
    )
    from flask_migrate import upgrade

    with app.app_context():
        upgrade(directory=app.extensions["migrate"].directory)
        db.engine.dispose()
    return url


@pytest.fixture
def app(database_url, tmp_path, monkeypatch, request):
    """Return a portal app on the migrated test database; rows are wiped afterwards.

    `@pytest.mark.app_settings(NAME=value, ...)` adds settings for a test or module.
    """
    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path / "instance"))
    settings = {
        "SQLALCHEMY_DATABASE_URI": database_url,
        "TESTING": True,
        "PORTAL_ENV": "testing",
        "SECRET_KEY": "test-secret-key",
        "MAIL_OUTBOX_DIR": str(tmp_path / "outbox"),
        # Tests decide when the sandbox posts webhooks (deliver_webhooks), so runs repeat.
        "SANDBOX_DELIVERY": "manual",
        "WEBHOOK_PROCESSING": "inline",
        # Queued mail is delivered right after each commit, so tests read the outbox at once.
        "MAIL_DELIVERY": "inline",
        "PORTAL_BASE_URL": "http://localhost",
        "PDF_CACHE_DIR": str(tmp_path / "pdf-cache"),
    }
    if os.environ.get("TEST_REDIS_URL"):
        # Rate limits (and later background jobs) then run on a real Redis.
        settings["REDIS_URL"] = os.environ["TEST_REDIS_URL"]
    marker = request.node.get_closest_marker("app_settings")
    if marker is not None:
        settings.update(marker.kwargs)
    app = create_app(settings)
    with app.app_context():
        limiter.reset()
        yield app
        db.session.remove()
        with db.engine.begin() as connection:
            for table in reversed(db.metadata.sorted_tables):
                if table.name == "audit_entries":
                    clear_append_only_table(connection, table)
                else:
                    connection.execute(table.delete())
        db.engine.dispose()


@pytest.fixture
def client(app):
    """Return a test client for the app."""
    return app.test_client()


@pytest.fixture
def make_user(app):
    """Return the user factory: make_user(role=Role.ADMIN, email=..., password=..., ...)."""
    return factories.make_user


@pytest.fixture
def login(client):
    """Return a function that signs a user in through the login form."""

    def sign_in(user: User, password: str = DEFAULT_PASSWORD):
        token = csrf_from(client, "/auth/login")
        response = client.post(
            "/auth/login", data={"email": user.email, "password": password, "csrf_token": token}
        )
        assert response.status_code == 302, response.get_data(as_text=True)
        return response

    return sign_in


@pytest.fixture
def outbox(app) -> Path:
    """Return the folder the portal writes mail to in tests."""
    return Path(app.config["MAIL_OUTBOX_DIR"])


@pytest.fixture
def stripe_api(app):
    """Return the portal's StripeClient (the embedded sandbox), inside a request context."""
    from portal.services.stripe_client import stripe_client

    with app.test_request_context("/"):
        yield stripe_client()


@pytest.fixture
def deliver_webhooks(app):
    """Return a function that makes the sandbox post every due webhook to the portal now."""
    from portal.sandbox import deliver_due

    def deliver() -> int:
        return deliver_due(app.extensions["stripe_sandbox"])

    return deliver


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
    yield {"url": base, "logins": logins, "output": output, "instance": instance}
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture
def page(chromium):
    """Return a fresh browser page (its own cookies)."""
    context = chromium.new_context()
    page = context.new_page()
    yield page
    context.close()
