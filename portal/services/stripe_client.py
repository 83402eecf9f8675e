"""The one place that imports `stripe`: builds the client for Stripe or the embedded sandbox."""
from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import stripe
from flask import current_app
from werkzeug.datastructures import Headers
from werkzeug.test import Client

# Where the embedded sandbox is mounted inside the portal, for browsers (Checkout, Stripe.js).
SANDBOX_PREFIX = "/_stripe"
STRIPE_JS_URL = "https://js.stripe.com/v3/"
WEBHOOK_PATH = "/webhooks/stripe"
# The in-process client never opens a socket: this host only has to parse.
SANDBOX_API_BASE = "http://sandbox.invalid"

StripeError = stripe.StripeError
CardError = stripe.CardError
APIConnectionError = stripe.APIConnectionError
InvalidRequestError = stripe.InvalidRequestError
SignatureVerificationError = stripe.SignatureVerificationError


def stripe_mode(config: Mapping) -> str:
    """Return 'live', 'test' or 'sandbox' from the configured secret key."""
    key = config.get("STRIPE_SECRET_KEY") or ""
    if not key:
        return "sandbox"
    if key.startswith(("sk_live_", "rk_live_")):
        return "live"
    return "test"


def payments_configured(config: Mapping) -> bool:
    """Return True when the portal can take payments (Stripe keys, or the embedded sandbox)."""
    if stripe_mode(config) != "sandbox":
        return bool(config.get("STRIPE_PUBLISHABLE_KEY") and config.get("STRIPE_WEBHOOK_SECRET"))
    return bool(config.get("SANDBOX_ENABLED"))


def stripe_js_url() -> str:
    """Return the Stripe.js address: Stripe's own with real keys, the sandbox's otherwise."""
    if stripe_mode(current_app.config) == "sandbox":
        return f"{SANDBOX_PREFIX}/v3/"
    return current_app.config.get("STRIPE_JS_URL") or STRIPE_JS_URL


def publishable_key() -> str:
    """Return the publishable key the browser uses with Stripe.js."""
    if stripe_mode(current_app.config) == "sandbox":
        return current_app.config["SANDBOX_PUBLISHABLE_KEY"]
    return current_app.config["STRIPE_PUBLISHABLE_KEY"]


class InProcessHTTPClient(stripe.HTTPClient):
    """Carry the SDK's requests to a WSGI app in this process (the embedded sandbox).

    The request keeps the SDK's method, path, headers and form body; only the socket is
    skipped. It is presented under the portal's public address and SANDBOX_PREFIX, so the
    URLs the sandbox hands out (Checkout pages, hosted invoices) work in the browser.
    """

    name = "in_process"

    def __init__(self, wsgi_app: Callable, base_url: Callable[[], str]):
        super().__init__()
        self._wsgi_app = wsgi_app
        self._base_url = base_url
        # How many API requests went out: operators and tests can see what a page cost.
        self.requests_sent = 0

    def request(self, method, url, headers, post_data=None, *, _usage=None):
        """Send one API request to the WSGI app and return (body, status, headers)."""
        self.requests_sent += 1
        parts = urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        client = Client(self._wsgi_app)
        response = client.open(
            path,
            method=method.upper(),
            headers=dict(headers or {}),
            data=post_data,
            base_url=self._base_url() + SANDBOX_PREFIX,
        )
        try:
            # Headers, not dict: the SDK reads Request-Id in two spellings.
            return response.get_data(), response.status_code, Headers(response.headers)
        finally:
            response.close()

    def close(self):
        """Release nothing: no connections are kept."""


def build_client(config: Mapping, http_client: stripe.HTTPClient | None = None
                 ) -> stripe.StripeClient:
    """Return a StripeClient for this configuration (through `http_client` for the sandbox)."""
    if stripe_mode(config) == "sandbox":
        if http_client is None:
            raise RuntimeError("the embedded sandbox is off and no Stripe keys are set")
        return stripe.StripeClient(
            config["SANDBOX_SECRET_KEY"],
            http_client=http_client,
            base_addresses={"api": SANDBOX_API_BASE},
            max_network_retries=0,
        )
    addresses = {"api": config["STRIPE_API_BASE"]} if config.get("STRIPE_API_BASE") else None
    return stripe.StripeClient(
        config["STRIPE_SECRET_KEY"], base_addresses=addresses, max_network_retries=2
    )


def stripe_client() -> stripe.StripeClient:
    """Return the current app's StripeClient, built at app creation."""
    client = current_app.extensions.get("stripe_client")
    if client is None:
        raise RuntimeError("payments are not configured: no Stripe keys and no embedded sandbox")
    return client


def webhook_secret() -> str:
    """Return the signing secret webhooks are checked against."""
    return current_app.config.get("STRIPE_WEBHOOK_SECRET") or ""


def construct_event(payload: bytes, signature: str | None) -> stripe.Event:
    """Verify a webhook's Stripe-Signature and parse it; raise on a bad one."""
    return stripe.Webhook.construct_event(payload, signature, webhook_secret())


def verify_event(payload: bytes, signature: str | None) -> dict:
    """Check a webhook's Stripe-Signature and return the event as plain JSON; raise on a bad one.

    Unlike `construct_event`, no Stripe object is built: intake needs only the id, type,
    time and object id, and a duplicate is turned away before anything costlier.
    """
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError("payload is not UTF-8") from exc
    stripe.WebhookSignature.verify_header(text, signature or "", webhook_secret(),
                                          stripe.Webhook.DEFAULT_TOLERANCE)
    try:
        event = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError("payload is not JSON") from exc
    if not isinstance(event, dict):
        raise ValueError("payload is not a Stripe event")
    return event


def request_id(obj) -> str | None:
    """Return the Stripe Request-Id of the response that produced `obj`, if known."""
    response = getattr(obj, "last_response", None)
    return getattr(response, "request_id", None) if response is not None else None


def response_version(obj) -> int | None:
    """Return when Stripe produced an object fetched just now (its response Date), as unix time.

    Objects from webhook payloads have no response: None. The in-process sandbox sends no
    Date header but shares this machine's clock, so the local time stands in.
    """
    if not isinstance(obj, stripe.StripeObject):
        return None
    response = getattr(obj, "last_response", None)
    if response is None:
        return None
    header = response.headers.get("Date") if response.headers else None
    if header:
        try:
            return int(parsedate_to_datetime(header).timestamp())
        except (TypeError, ValueError):
            pass
    return int(time.time())


def as_dict(obj) -> dict:
    """Return a plain dict of a Stripe object (or pass a dict through)."""
    if isinstance(obj, stripe.StripeObject):
        return obj.to_dict(recursive=True)
    return dict(obj)


def stripe_csp_sources(config: Mapping) -> dict[str, list[str]]:
    """Return what Stripe.js, Elements and Checkout need beyond 'self', per CSP directive.

    The embedded sandbox is served from this origin, so it needs nothing more. With Stripe,
    the sources are the ones Stripe documents for Stripe.js and Elements, plus Checkout's
    host as a form target (the subscribe form redirects there).
    """
    if stripe_mode(config) == "sandbox":
        return {}
    sources = {
        "script-src": ["https://js.stripe.com", "https://*.js.stripe.com"],
        "frame-src": ["https://js.stripe.com", "https://*.js.stripe.com",
                      "https://hooks.stripe.com"],
        "connect-src": ["https://api.stripe.com"],
        "form-action": ["https://checkout.stripe.com"],
    }
    if config.get("STRIPE_API_BASE"):
        parts = urlsplit(config["STRIPE_API_BASE"])
        sources["form-action"].append(f"{parts.scheme}://{parts.netloc}")
    if config.get("STRIPE_JS_URL"):
        # A Stripe.js served elsewhere (the sandbox run alone) frames and calls its own origin.
        parts = urlsplit(config["STRIPE_JS_URL"])
        for directive in ("script-src", "frame-src", "connect-src"):
            sources[directive].append(f"{parts.scheme}://{parts.netloc}")
    return sources
