"""``flask sandbox reset`` clears the store the CLI's app points at."""

from __future__ import annotations

from flask import Flask

from portal.sandbox import create_sandbox_app
from portal.sandbox.cli import sandbox_cli
from portal.sandbox.core.store import transaction


def count_objects(db: str) -> int:
    """Return how many objects the sandbox store holds."""
    with transaction(db) as store:
        return store.conn.execute("SELECT COUNT(*) FROM objects").fetchone()[0]


def test_reset_clears_the_configured_store(tmp_path, start_sandbox):
    box = start_sandbox(db=str(tmp_path / "cli.db"))
    box.client().v1.customers.create()
    assert count_objects(box.db) == 1
    host = Flask("host", instance_path=str(tmp_path / "instance"))
    host.config["SANDBOX_DB"] = box.db
    host.cli.add_command(sandbox_cli)
    result = host.test_cli_runner().invoke(args=["sandbox", "reset"])
    assert result.exit_code == 0, result.output
    assert "cleared" in result.output
    assert count_objects(box.db) == 0


def test_default_store_lives_in_the_instance_folder(tmp_path):
    host = Flask("host", instance_path=str(tmp_path / "instance"))
    host.cli.add_command(sandbox_cli)
    result = host.test_cli_runner().invoke(args=["sandbox", "reset"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "instance" / "sandbox.db").exists()


def test_serve_is_registered():
    assert set(sandbox_cli.commands) == {"serve", "reset"}
    params = {p.name for p in sandbox_cli.commands["serve"].params}
    assert params == {"host", "port", "faults"}


def test_app_default_database_is_in_its_instance_path(tmp_path):
    app = create_sandbox_app({"SANDBOX_DB": str(tmp_path / "explicit.db")})
    assert app.config["SANDBOX_DB"].endswith("explicit.db")
    assert app.config["SANDBOX_DELIVERY"] == "thread"


def test_memory_store_is_a_private_throwaway_file(start_sandbox):
    box = start_sandbox(db=":memory:")
    client = box.client()
    created = client.v1.customers.create(params={"email": "m@example.com"})
    assert [c.id for c in client.v1.customers.list().data] == [created.id]
    assert box.app.config["SANDBOX_DB"].endswith("sandbox.db")
