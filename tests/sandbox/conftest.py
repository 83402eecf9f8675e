"""Fixtures for the Stripe sandbox: a live server on an ephemeral port and the official SDK.

Tests talk to the sandbox only through ``stripe.StripeClient`` over real HTTP, the way the
portal (or any Stripe integration) would.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import stripe
from flask import Flask
from werkzeug.serving import make_server

from portal.sandbox import create_sandbox_app, stop_delivery_thread

API_KEY = "sk_test_sandbox_tests"


@dataclass
class Sandbox:
    """A running sandbox: its Flask app, base URL and database path."""

    app: Flask
    url: str
    db: str

    def client(self, key: str = API_KEY) -> stripe.StripeClient:
        """Return an SDK client pointed at this sandbox."""
        return stripe.StripeClient(key, base_addresses={"api": self.url}, max_network_retries=0)


def serve_wsgi(app: Any) -> Iterator[str]:
    """Serve a WSGI app on 127.0.0.1 with an ephemeral port until the generator is closed."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def start_sandbox(tmp_path: Path) -> Iterator[Callable[..., Sandbox]]:
    """Return a builder of running sandboxes: start_sandbox(delivery="manual", deliver=None)."""
    running: list[Iterator[str]] = []
    apps: list[Flask] = []

    def start(
        delivery: str = "manual", deliver: Callable | None = None, db: str | None = None
    ) -> Sandbox:
        path = db or str(tmp_path / f"sandbox{len(running)}.db")
        app = create_sandbox_app(
            {"SANDBOX_DB": path, "SANDBOX_DELIVERY": delivery, "SANDBOX_DELIVER": deliver}
        )
        serving = serve_wsgi(app)
        url = next(serving)
        running.append(serving)
        apps.append(app)
        return Sandbox(app, url, path)

    yield start
    for serving in running:
        serving.close()
    for app in apps:
        stop_delivery_thread(app)


@pytest.fixture
def sandbox(start_sandbox: Callable[..., Sandbox]) -> Sandbox:
    """Return a running sandbox with manual webhook delivery."""
    return start_sandbox()


@pytest.fixture
def stripe_client(sandbox: Sandbox) -> stripe.StripeClient:
    """Return ``stripe.StripeClient`` talking to the sandbox over HTTP."""
    return sandbox.client()


@pytest.fixture
def make_customer(stripe_client: stripe.StripeClient) -> Callable[..., Any]:
    """Return a builder of customers: make_customer(email=..., payment_method="pm_card_visa")."""
    counter = iter(range(1, 100_000))

    def make(**params: Any) -> Any:
        params.setdefault("email", f"customer{next(counter)}@example.com")
        return stripe_client.v1.customers.create(params=params)

    return make


@pytest.fixture
def make_payment(stripe_client: stripe.StripeClient) -> Callable[..., Any]:
    """Return a builder of confirmed PaymentIntents: make_payment(amount=1000, ...)."""

    def make(
        amount: int = 1000,
        currency: str = "usd",
        payment_method: str = "pm_card_visa",
        **params: Any,
    ) -> Any:
        return stripe_client.v1.payment_intents.create(
            params={
                "amount": amount,
                "currency": currency,
                "payment_method": payment_method,
                "confirm": True,
                **params,
            }
        )

    return make


def sandbox_request(client: stripe.StripeClient, method: str, path: str, **params: Any) -> Any:
    """Call a sandbox-only endpoint through the SDK's raw request and decode its JSON."""
    response = client.raw_request(method, path, **params)
    return json.loads(response.body)


@dataclass
class Receiver:
    """A tiny webhook receiver: records every POST and answers with queued status codes."""

    url: str
    received: list[dict] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)


@pytest.fixture
def webhook_receiver() -> Iterator[Receiver]:
    """Run an HTTP server recording webhook posts (200 unless ``statuses`` says otherwise)."""
    state: dict[str, Receiver] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            receiver = state["r"]
            receiver.received.append({"headers": dict(self.headers), "body": body})
            status = receiver.statuses.pop(0) if receiver.statuses else 200
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature fixed
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state["r"] = Receiver(f"http://127.0.0.1:{server.server_port}/webhooks")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state["r"]
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture
def shop(sandbox):
    """Run the test shop on its own origin, loading Stripe.js from the sandbox."""
    from tests.sandbox.browser_support import merchant_app, serve

    url, stop = serve(merchant_app(f"{sandbox.url}/v3/"))
    yield url
    stop()
