"""The models and the migrations describe the same schema, on SQLite and PostgreSQL."""
from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from portal.extensions import db


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
