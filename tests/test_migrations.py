"""The models and the migrations describe the same schema, on SQLite and PostgreSQL."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import create_engine, text

from portal import create_app
from portal.extensions import db
from portal.models import Account, Charge, PaymentMethod, Refund


def test_autogenerate_finds_nothing_to_do(app):
    migrate_config = app.extensions["migrate"].configure_args
    with db.engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, **migrate_config}
        )
        differences = compare_metadata(context, db.metadata)
    assert differences == [], f"models and migrations differ on {db.engine.dialect.name}"


def test_schema_has_head_revision(app):
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection)
        assert context.get_current_revision() is not None


def test_suite_runs_on_the_database_ci_asks_for(app):
    import os

    if os.environ.get("REQUIRE_POSTGRES"):
        assert db.engine.dialect.name == "postgresql"
    else:
        assert db.engine.dialect.name in {"sqlite", "postgresql"}


@pytest.fixture
def scratch_database(database_url, tmp_path):
    """Return an empty database URL of the run's dialect (PostgreSQL: a schema of its own)."""
    if not database_url.startswith("postgresql"):
        yield f"sqlite:///{tmp_path / 'scratch.db'}"
        return
    schema = "migration_scratch"
    engine = create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    separator = "&" if "?" in database_url else "?"
    yield f"{database_url}{separator}options=-csearch_path%3D{schema}"
    with engine.begin() as connection:
        connection.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
    engine.dispose()


def test_mirror_columns_migration_keeps_the_mirror(scratch_database, tmp_path, monkeypatch):
    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path / "instance"))
    scratch = create_app({"SQLALCHEMY_DATABASE_URI": scratch_database, "TESTING": True,
                          "SECRET_KEY": "migration-test", "SANDBOX_ENABLED": False})
    directory = scratch.extensions["migrate"].directory
    created = "2026-01-02 03:04:05"
    with scratch.app_context():
        upgrade(directory=directory, revision="0003")
        with db.engine.begin() as connection:
            connection.execute(text(
                "INSERT INTO accounts (id, name, stripe_customer_id, default_payment_method_id,"
                " stripe_customer_version, created_at)"
                " VALUES (1, 'Acme', 'cus_1', 'pm_1', 1700000123, :at)"), {"at": created})
            connection.execute(text(
                "INSERT INTO charges (stripe_charge_id, account_id, status, currency, amount,"
                " amount_captured, amount_refunded, stripe_created, version)"
                " VALUES ('ch_1', 1, 'succeeded', 'usd', 4200, 4200, 0, :at, 1700000200)"),
                {"at": created})
            connection.execute(text(
                "INSERT INTO payment_methods (stripe_payment_method_id, account_id, brand, last4,"
                " exp_month, exp_year, stripe_created, version)"
                " VALUES ('pm_1', 1, 'visa', '4242', 12, 2030, :at, 1700000300)"),
                {"at": created})
            connection.execute(text(
                "INSERT INTO refunds (stripe_refund_id, stripe_charge_id, account_id, amount,"
                " currency, status, stripe_created, version)"
                " VALUES ('re_1', 'ch_1', 1, 1000, 'usd', 'succeeded', :at, 1700000400)"),
                {"at": created})
        upgrade(directory=directory)
        db.session.remove()
        account = db.session.get(Account, 1)
        assert (account.stripe_customer_id, account.default_payment_method_id,
                account.version, account.synced_at) == ("cus_1", "pm_1", 1700000123, None)
        for model, stripe_id, version in ((Charge, "ch_1", 1700000200),
                                          (PaymentMethod, "pm_1", 1700000300),
                                          (Refund, "re_1", 1700000400)):
            row = db.session.scalar(db.select(model))
            assert (row.stripe_id, row.version) == (stripe_id, version)
            assert row.stripe_created == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
            assert row.synced_at is not None and row.synced_at.tzinfo is not None
        db.session.remove()
        downgrade(directory=directory, revision="0003")
        with db.engine.connect() as connection:
            assert connection.execute(text(
                "SELECT stripe_customer_version FROM accounts")).scalar() == 1700000123
            assert connection.execute(text("SELECT count(*) FROM refunds")).scalar() == 1
        db.engine.dispose()
