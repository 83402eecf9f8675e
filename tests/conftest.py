"""Shared fixtures: a migrated database (SQLite, or PostgreSQL via TEST_DATABASE_URL),
the app, a client, and builders for users and signed-in sessions."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

from portal import create_app
from portal.config import normalise_database_url
from portal.extensions import db, limiter
from portal.models import Role, User
from portal.services.accounts import create_staff_user, register_customer
from tests.factories import DEFAULT_PASSWORD, csrf_from


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
def app(database_url, tmp_path, monkeypatch):
    """Return a portal app on the migrated test database; rows are wiped afterwards."""
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
    }
    if os.environ.get("TEST_REDIS_URL"):
        # Rate limits (and later background jobs) then run on a real Redis.
        settings["REDIS_URL"] = os.environ["TEST_REDIS_URL"]
    app = create_app(settings)
    with app.app_context():
        limiter.reset()
        yield app
        db.session.remove()
        with db.engine.begin() as connection:
            for table in reversed(db.metadata.sorted_tables):
                connection.execute(table.delete())
        db.engine.dispose()


@pytest.fixture
def client(app):
    """Return a test client for the app."""
    return app.test_client()


@pytest.fixture
def make_user(app):
    """Return a builder of users: make_user(role=Role.ADMIN, email=..., password=...)."""
    counter = iter(range(1, 10_000))

    def build(role: Role = Role.CUSTOMER, email: str | None = None,
              password: str = DEFAULT_PASSWORD, account_name: str | None = None) -> User:
        email = email or f"{role.value}{next(counter)}@example.com"
        if role is Role.CUSTOMER:
            return register_customer(email, password, account_name or f"Account of {email}")
        return create_staff_user(email, password, role)

    return build


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
def stripe(app):
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
