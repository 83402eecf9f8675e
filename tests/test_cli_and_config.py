"""Flask commands, configuration and the generated secret key."""
from __future__ import annotations

import os
import stat

import pytest

from portal import create_app
from portal.cli import prepare_database
from portal.extensions import db
from portal.models import Price, Product, Role, User
from portal.services.accounts import authenticate


def test_create_user_asks_for_password(app):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["create-user", "--role", "admin", "Boss@Example.com"],
                           input="a good long password\na good long password\n")
    assert result.exit_code == 0, result.output
    user = db.session.scalar(db.select(User).where(User.email == "boss@example.com"))
    assert user.role == Role.ADMIN and user.account_id is None
    assert authenticate("boss@example.com", "a good long password") == user


def test_create_user_refuses_short_password_and_duplicates(app, make_user):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["create-user", "--role", "auditor", "a@example.com"],
                           input="short\nshort\n")
    assert result.exit_code != 0 and "between 12 and 128" in result.output
    make_user(email="dup@example.com")
    result = runner.invoke(args=["create-user", "dup@example.com"],
                           input="a good long password\na good long password\n")
    assert result.exit_code != 0 and "already exists" in result.output


def test_create_user_takes_no_password_argument(app):
    result = app.test_cli_runner().invoke(
        args=["create-user", "x@example.com", "--password", "a good long password"])
    assert result.exit_code == 2


def test_prepare_database_seeds_plans_and_demo_users_once(app):
    logins = prepare_database(seed_demo=True)
    assert {role for role, _email, _password in logins} == {"customer", "admin", "auditor"}
    again = prepare_database(seed_demo=True)
    assert again == logins
    for _role, email, password in logins:
        assert authenticate(email, password) is not None
    assert db.session.scalar(db.select(db.func.count(User.id))) == 3
    plans = {product.key: product for product in db.session.scalars(db.select(Product))}
    assert set(plans) == {"free", "starter", "pro", "enterprise"}
    pro_year = db.session.scalar(db.select(Price).where(Price.lookup_key == "pro_year"))
    pro_month = db.session.scalar(db.select(Price).where(Price.lookup_key == "pro_month"))
    # Yearly is about two months free.
    assert pro_year.unit_amount == pro_month.unit_amount * 10
    assert os.path.exists(os.path.join(app.instance_path, "demo-logins.txt"))


def test_secret_key_is_generated_once_and_private(tmp_path, monkeypatch):
    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path))
    monkeypatch.delenv("SECRET_KEY", raising=False)
    first = create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"})
    second = create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"})
    assert first.config["SECRET_KEY"] == second.config["SECRET_KEY"]
    assert len(first.config["SECRET_KEY"]) >= 32
    mode = stat.S_IMODE((tmp_path / "secret_key").stat().st_mode)
    assert mode == 0o600


def test_environment_and_instance_config_are_read(tmp_path, monkeypatch):
    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("DATABASE_URL", "postgres://user@db.example/portal")
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/3")
    (tmp_path / "config.py").write_text("MAIL_DEFAULT_SENDER = 'billing@acme.example'\n")
    app = create_app()
    assert app.config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://user@db.example/portal"
    assert app.config["RATELIMIT_STORAGE_URI"] == "redis://127.0.0.1:6379/3"
    assert app.config["MAIL_DEFAULT_SENDER"] == "billing@acme.example"
    # Production by default: cookies only travel over https.
    assert app.config["SESSION_COOKIE_SECURE"] is True


def test_development_serving_allows_plain_http_cookies(tmp_path, monkeypatch):
    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("PORTAL_ENV", "development")
    app = create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"})
    assert app.config["SESSION_COOKIE_SECURE"] is False


def test_sqlite_runs_in_wal_mode_with_foreign_keys(app):
    if db.engine.dialect.name != "sqlite":
        pytest.skip("SQLite pragmas only apply to SQLite")
    with db.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_register_webhook_prints_the_signing_secret(app, stripe_api):
    result = app.test_cli_runner().invoke(
        args=["billing", "register-webhook", "https://portal.example/webhooks/stripe"])
    assert result.exit_code == 0, result.output
    secret = result.output.split("STRIPE_WEBHOOK_SECRET=")[1].strip()
    endpoint_id = result.output.split()[1]
    endpoint = stripe_api.v1.webhook_endpoints.retrieve(endpoint_id)
    assert secret.startswith("whsec_") and endpoint.url == "https://portal.example/webhooks/stripe"
    assert "invoice.paid" in endpoint.enabled_events
