"""The one seam between the portal and its embedded Stripe sandbox (portal.sandbox).

With no Stripe keys, `embed(app)` mounts the sandbox's WSGI app under SANDBOX_PREFIX, gives
the portal a StripeClient that reaches it in process, and registers the portal's webhook
endpoint there, all once at app creation. Nothing else in the portal imports portal.sandbox:
swapping the sandbox for Stripe changes configuration, not code.
"""
from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from urllib.parse import urlsplit

from flask import Flask
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.test import Client

from portal import config as settings
from portal.sandbox import create_sandbox_app
from portal.sandbox.cli import sandbox_cli
from portal.services.stripe_client import (
    SANDBOX_PREFIX,
    WEBHOOK_PATH,
    InProcessHTTPClient,
    InvalidRequestError,
    build_client,
)

__all__ = ["embed", "public_base_url", "sandbox_cli"]



def public_base_url(app: Flask) -> str:
    """Return the portal's address as browsers see it: PORTAL_BASE_URL, never a request's Host."""
    return app.config["PORTAL_BASE_URL"].rstrip("/")


def embed(app: Flask) -> None:
    """Mount the sandbox, build the in-process StripeClient and register the webhook endpoint."""

    def deliver_in_process(url: str, headers: dict, body: bytes) -> int:
        """Post a sandbox webhook straight into this app's webhook endpoint."""
        path = urlsplit(url).path
        if path != WEBHOOK_PATH:
            return 404
        response = Client(app).post(path, headers=headers, data=body,
                                    base_url=public_base_url(app))
        try:
            return response.status_code
        finally:
            response.close()

    keys = settings.sandbox_key_pair(app.instance_path)
    app.config["SANDBOX_SECRET_KEY"] = keys["secret"]
    app.config["SANDBOX_PUBLISHABLE_KEY"] = keys["publishable"]
    base = urlsplit(public_base_url(app))
    sandbox_db = app.config.get("SANDBOX_DB") or str(Path(app.instance_path) / "sandbox.db")
    if sandbox_db != ":memory:":
        settings.create_private_file(sandbox_db)
    sandbox = create_sandbox_app({
        "SANDBOX_DB": sandbox_db,
        "SANDBOX_DELIVERY": app.config.get("SANDBOX_DELIVERY", "thread"),
        "SANDBOX_DELIVER": deliver_in_process,
        # Locked to this portal: its own key pair, and redirects back to its own origin only.
        "SANDBOX_API_KEYS": keys,
        "SANDBOX_REDIRECT_ORIGINS": [f"{base.scheme}://{base.netloc}"],
        # Fault injection stays refused unless asked for, and never outside development/tests.
        "SANDBOX_FAULT_INJECTION": bool(app.config.get("SANDBOX_FAULT_INJECTION"))
        and app.config["PORTAL_ENV"] in ("development", "testing"),
    })
    app.extensions["stripe_sandbox"] = sandbox
    app.wsgi_app = DispatcherMiddleware(app.wsgi_app, {SANDBOX_PREFIX: sandbox.wsgi_app})
    # The sandbox hands out browser URLs (Checkout, hosted invoices) under the portal's
    # configured address, never one a request's Host header claims.
    http_client = InProcessHTTPClient(sandbox.wsgi_app, lambda: public_base_url(app),
                                      float(app.config["STRIPE_CONNECT_TIMEOUT"]),
                                      float(app.config["STRIPE_READ_TIMEOUT"]))
    app.extensions["stripe_http_client"] = http_client
    client = app.extensions["stripe_client"] = build_client(app.config, http_client)
    if not app.config.get("STRIPE_WEBHOOK_SECRET"):
        # Registered before anything the portal does can emit an event.
        app.config["STRIPE_WEBHOOK_SECRET"] = ensure_webhook_endpoint(
            client, app.instance_path, public_base_url(app) + WEBHOOK_PATH)


def ensure_webhook_endpoint(client, instance_path: str, url: str) -> str:
    """Register this portal's webhook endpoint with the sandbox once; return its secret.

    The secret is only shown when an endpoint is created, so it is kept in the instance
    folder; a lock file stops several workers starting together from registering twice.
    """
    state_path = Path(instance_path) / "sandbox-webhook.json"
    with (Path(instance_path) / "sandbox-webhook.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if state_path.exists():
            state = json.loads(state_path.read_text())
            try:
                client.v1.webhook_endpoints.retrieve(state["id"])
                return state["secret"]
            except InvalidRequestError:
                pass  # the sandbox was reset: register again
        endpoint = client.v1.webhook_endpoints.create(params={
            "url": url,
            "enabled_events": ["*"],
            "description": "billing portal (embedded sandbox)",
        })
        state_path.write_text(json.dumps({"id": endpoint.id, "secret": endpoint.secret}))
        os.chmod(state_path, 0o600)
        return endpoint.secret
