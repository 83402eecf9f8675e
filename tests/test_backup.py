"""`flask backup`: an online SQLite backup that restores (README's steps) into a working portal,
and the pg_dump command for PostgreSQL, which never shows the password."""
from __future__ import annotations

import os
import shutil
import stat

from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask_migrate import upgrade

from portal import create_app
from portal.extensions import db
from portal.models import Account


def sqlite_app(path, tmp_path, monkeypatch):
    """Return a portal app on its own SQLite file, migrated to head."""
    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path / "instance"))
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{path}", "TESTING": True,
                      "PORTAL_ENV": "testing", "SECRET_KEY": "backup-test",
                      "MAIL_OUTBOX_DIR": str(tmp_path / "outbox")})
    with app.app_context():
        upgrade(directory=app.extensions["migrate"].directory)
    return app


def account_names(app) -> list[str]:
    with app.app_context():
        names = sorted(db.session.scalars(db.select(Account.name)))
        db.session.remove()
        return names


def test_sqlite_backup_restores_into_a_working_portal(tmp_path, monkeypatch):
    live = tmp_path / "portal.db"
    app = sqlite_app(live, tmp_path, monkeypatch)
    with app.app_context():
        db.session.add_all([Account(name="Acme"), Account(name="Globex")])
        db.session.commit()
        # Backed up while the portal holds its database open (WAL mode).
        db.session.execute(db.select(Account.id)).all()
        backup = tmp_path / "backups" / "portal-1.db"
        backup.parent.mkdir()
        result = app.test_cli_runner().invoke(args=["backup", str(backup)])
        assert result.exit_code == 0, result.output
        assert f"Backed up the database to {backup}" in result.output
        assert stat.S_IMODE(os.stat(backup).st_mode) == 0o600
        # A second backup never overwrites the first.
        again = app.test_cli_runner().invoke(args=["backup", str(backup)])
        assert again.exit_code != 0 and "exists" in again.output

        # Data changes after the backup.
        db.session.execute(db.delete(Account).where(Account.name == "Globex"))
        db.session.add(Account(name="Initech"))
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    assert account_names(app) == ["Acme", "Initech"]

    # Restore as README says: stop the portal, replace the file, drop its WAL and shared
    # memory files, then migrate and start.
    for suffix in ("-wal", "-shm"):
        live.with_name(live.name + suffix).unlink(missing_ok=True)
    shutil.copyfile(backup, live)
    restored = sqlite_app(live, tmp_path, monkeypatch)
    assert account_names(restored) == ["Acme", "Globex"]
    with restored.app_context():
        head = ScriptDirectory.from_config(
            restored.extensions["migrate"].migrate.get_config()).get_current_head()
        with db.engine.connect() as connection:
            assert MigrationContext.configure(connection).get_current_revision() == head
        db.engine.dispose()
    assert restored.test_client().get("/health").status_code == 200


def test_backup_refuses_a_missing_folder(tmp_path, monkeypatch):
    app = sqlite_app(tmp_path / "portal.db", tmp_path, monkeypatch)
    result = app.test_cli_runner().invoke(args=["backup", str(tmp_path / "nope" / "b.db")])
    assert result.exit_code != 0 and "is not a folder" in result.output
    assert not (tmp_path / "nope").exists()


def test_postgres_backup_prints_pg_dump_without_the_password(tmp_path, monkeypatch):
    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path / "instance"))
    app = create_app({
        "SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://billing:s3cret-pw@db.internal:5433/portal",
        "TESTING": True, "PORTAL_ENV": "testing", "SECRET_KEY": "backup-test"})
    result = app.test_cli_runner().invoke(args=["backup", "/var/backups/portal.dump"])
    assert result.exit_code == 0, result.output
    assert ("pg_dump --format=custom --no-owner --host db.internal --port 5433 "
            "--username billing --file /var/backups/portal.dump portal") in result.output
    assert "s3cret-pw" not in result.output
    assert not os.path.exists("/var/backups/portal.dump")
