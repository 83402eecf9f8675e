"""An offline stand-in for the Stripe API: its own Flask app, state in one SQLite file.

Entry points:

- ``create_sandbox_app(config)`` builds the WSGI app. Config keys:
  ``SANDBOX_DB`` (SQLite path; default ``<instance_path>/sandbox.db``; ``":memory:"`` gives a
  private throwaway store in a temporary directory removed with the app),
  ``SANDBOX_DELIVER`` (``callable(url, headers, body) -> status`` used instead of HTTP to
  post webhooks), ``SANDBOX_DELIVERY`` (``"inline"``: deliver right after each request
  commits; ``"thread"`` (default): a background loop once a second; ``"manual"``: only
  when ``deliver_due`` is called), ``SANDBOX_API_KEYS`` (``{"secret": ..., "publishable":
  ...}``: the only keys accepted, for a sandbox embedded in one portal; None (default) accepts
  any test key, as ``sandbox serve`` does), ``SANDBOX_REDIRECT_ORIGINS`` (the origins
  success, cancel and return URLs may point at; None allows any http(s) address),
  ``SANDBOX_FAULT_INJECTION`` (True enables ``/v1/sandbox/faults``: injected 500s, 429s,
  latency, hangs, dropped connections and lost responses; off by default, ``core.faults``).
- ``deliver_due(app, now=None)`` posts every due webhook delivery and returns how many
  succeeded; pass ``now`` to simulate later retries.
- ``reset_state(app)`` empties the store.

Every module of ``portal.sandbox.objects``, ``portal.sandbox.billing`` and
``portal.sandbox.resources`` is imported at app creation: resources register their routes
with ``core.api.route``, the domain its event listeners and billing hooks. The browser
pages in ``portal.sandbox.hosted`` are added with its ``register(app)``.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import shutil
import tempfile
import threading
import weakref
from typing import Any

from flask import Flask, Response, current_app, request

from .billing.engine import run_billing
from .core import api
from .core.errors import StripeError
from .core.faults import FaultInjector
from .core.ids import new_id
from .core.store import connect, transaction
from .core.webhooks import DeliveryThread, deliver_due

__all__ = ["create_sandbox_app", "deliver_due", "reset_state", "stop_delivery_thread"]

RESOURCE_PACKAGES = (
    "portal.sandbox.objects",
    "portal.sandbox.billing",
    "portal.sandbox.resources",
)


def load_resources() -> None:
    """Import every resource module so their ``@route`` declarations register."""
    for package_name in RESOURCE_PACKAGES:
        try:
            package = importlib.import_module(package_name)
        except ModuleNotFoundError as exc:
            if exc.name == package_name:
                continue
            raise
        for info in pkgutil.iter_modules(package.__path__):
            importlib.import_module(f"{package_name}.{info.name}")


def register_hosted_pages(app: Flask) -> None:
    """Add the browser pages (Checkout, 3-D Secure, Stripe.js stand-in) when that package exists."""
    try:
        hosted = importlib.import_module("portal.sandbox.hosted")
    except ModuleNotFoundError as exc:
        if exc.name == "portal.sandbox.hosted":
            return
        raise
    hosted.register(app)


def create_sandbox_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the sandbox WSGI app from a config dict."""
    here = os.path.dirname(__file__)
    app = Flask(
        __name__,
        template_folder=os.path.join(here, "templates"),
        static_folder=os.path.join(here, "static"),
    )
    app.config.update(SANDBOX_DELIVERY="thread", SANDBOX_DELIVER=None, SANDBOX_API_KEYS=None,
                      SANDBOX_REDIRECT_ORIGINS=None, SANDBOX_FAULT_INJECTION=False)
    app.config.update(config or {})
    if not app.config.get("SANDBOX_DB"):
        os.makedirs(app.instance_path, exist_ok=True)
        app.config["SANDBOX_DB"] = os.path.join(app.instance_path, "sandbox.db")
    elif app.config["SANDBOX_DB"] == ":memory:":
        # Every request opens its own connection, which would each see a new empty in-memory
        # database; a private throwaway file gives the same "fresh store" meaning.
        scratch = tempfile.mkdtemp(prefix="stripe-sandbox-")
        weakref.finalize(app, shutil.rmtree, scratch, ignore_errors=True)
        app.config["SANDBOX_DB"] = os.path.join(scratch, "sandbox.db")
    if app.config["SANDBOX_DELIVERY"] not in ("inline", "thread", "manual"):
        raise ValueError("SANDBOX_DELIVERY must be 'inline', 'thread' or 'manual'")
    connect(app.config["SANDBOX_DB"]).close()
    load_resources()
    api.install(app)
    register_hosted_pages(app)
    app.extensions["sandbox"] = {"thread": None, "lock": threading.Lock()}
    register_error_pages(app)
    app.after_request(security_headers)
    # Outermost, so an injected fault can hold or drop the connection itself (core.faults).
    app.wsgi_app = FaultInjector(app.wsgi_app, app.config)  # type: ignore[method-assign]
    if app.config["SANDBOX_DELIVERY"] == "thread":
        # Started on the first request so a forking server starts it in each worker.
        app.before_request(lambda: _ensure_thread(app))
    return app


# Pages Stripe.js puts in frames on the portal's pages: card fields and 3-D Secure challenges.
FRAMED_PATHS = ("/v3/", "/three_d_secure/")


def security_headers(response: Response) -> Response:
    """Give every sandbox response the headers the portal's own pages carry."""
    origins = current_app.config.get("SANDBOX_REDIRECT_ORIGINS")
    if request.path.startswith(FRAMED_PATHS):
        # Framed by the portal's pages (another origin when the sandbox runs alone).
        ancestors = " ".join(["'self'", *(origins or [])]) if origins is not None else "*"
    else:
        ancestors = "'none'"
        response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Content-Security-Policy", (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-src 'self'; base-uri 'self'; object-src 'none'; "
        f"frame-ancestors {ancestors}"))
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    return response


def _ensure_thread(app: Flask) -> None:
    """Start the delivery loop once per process."""
    state = app.extensions["sandbox"]
    with state["lock"]:
        if state["thread"] is None or not state["thread"].is_alive():
            state["thread"] = DeliveryThread(app, before=run_billing)
            state["thread"].start()


def stop_delivery_thread(app: Flask) -> None:
    """Stop the background delivery loop if it runs."""
    thread = app.extensions["sandbox"].get("thread")
    if thread is not None:
        thread.stop()
        thread.join(timeout=5)
        app.extensions["sandbox"]["thread"] = None


def register_error_pages(app: Flask) -> None:
    """Answer unknown URLs and methods with Stripe's error bodies."""

    def unrecognized(_exc: Exception) -> Response:
        err = StripeError(
            f"Unrecognized request URL ({request.method}: {request.path}). Please see "
            "https://stripe.com/docs or we can help at https://support.stripe.com/.",
            status=404,
        )
        return api.error_response(err, new_id("req", 14))

    def server_error(_exc: Exception) -> Response:
        err = StripeError("An unknown error occurred in the sandbox.", status=500, type="api_error")
        return api.error_response(err, new_id("req", 14))

    app.register_error_handler(404, unrecognized)
    app.register_error_handler(405, unrecognized)
    app.register_error_handler(500, server_error)


def reset_state(app: Flask) -> None:
    """Delete every object, event, idempotency key and delivery of this sandbox."""
    with transaction(app.config["SANDBOX_DB"]) as store:
        store.clear()
