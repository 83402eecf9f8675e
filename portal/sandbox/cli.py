"""``flask sandbox serve`` and ``flask sandbox reset``: run or clear the sandbox alone."""

from __future__ import annotations

import os

import click
from flask import current_app
from flask.cli import AppGroup
from werkzeug.serving import make_server

from . import create_sandbox_app, reset_state, stop_delivery_thread

sandbox_cli = AppGroup("sandbox", help="Run or reset the offline Stripe sandbox.")


def _sandbox_db() -> str:
    """Return the configured sandbox database path, defaulting to the instance folder."""
    configured = current_app.config.get("SANDBOX_DB")
    if configured:
        return configured
    os.makedirs(current_app.instance_path, exist_ok=True)
    return os.path.join(current_app.instance_path, "sandbox.db")


@sandbox_cli.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", default=12111, show_default=True, type=int, help="Port to listen on.")
@click.option("--faults", is_flag=True,
              help="Enable fault injection (/v1/sandbox/faults): development and tests only.")
def serve(host: str, port: int, faults: bool) -> None:
    """Serve the sandbox API until interrupted."""
    app = create_sandbox_app(
        {
            "SANDBOX_DB": _sandbox_db(),
            "SANDBOX_DELIVERY": current_app.config.get("SANDBOX_DELIVERY", "thread"),
            "SANDBOX_FAULT_INJECTION": faults,
        }
    )
    server = make_server(host, port, app, threaded=True)
    click.echo(
        f"Stripe sandbox on http://{host}:{server.server_port} (db {app.config['SANDBOX_DB']})"
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        click.echo("stopping")
    finally:
        server.server_close()
        stop_delivery_thread(app)


@sandbox_cli.command("reset")
def reset() -> None:
    """Delete every object, event and webhook delivery in the sandbox store."""
    app = create_sandbox_app({"SANDBOX_DB": _sandbox_db(), "SANDBOX_DELIVERY": "manual"})
    reset_state(app)
    click.echo(f"sandbox state cleared ({app.config['SANDBOX_DB']})")
