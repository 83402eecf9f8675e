"""The one place that imports `stripe`: builds the client for Stripe or the embedded sandbox."""
from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Mapping
from contextvars import ContextVar, Token
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import requests
import stripe
from flask import current_app
from werkzeug.datastructures import Headers
from werkzeug.test import Client

from portal.services import metrics

# Where the embedded sandbox is mounted inside the portal, for browsers (Checkout, Stripe.js).
SANDBOX_PREFIX = "/_stripe"
STRIPE_JS_URL = "https://js.stripe.com/v3/"
WEBHOOK_PATH = "/webhooks/stripe"
# The in-process client never opens a socket: this host only has to parse.
SANDBOX_API_BASE = "http://sandbox.invalid"

StripeError = stripe.StripeError
CardError = stripe.CardError
APIConnectionError = stripe.APIConnectionError
APIError = stripe.APIError
RateLimitError = stripe.RateLimitError
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


# The wall-clock instant (time.monotonic) by which the current web request must be answered:
# every Stripe call made for it, retries included, ends before then.
_deadline: ContextVar[float | None] = ContextVar("stripe_deadline", default=None)
# Header the sandbox uses, on an in-process call only, to say what its socket would have done.
SANDBOX_FAULT_HEADER = "Sandbox-Fault"
# Stripe ids in paths ("sub_1Nx...", "in_9f..."): metrics name the route, not the object.
_ID_SEGMENT = re.compile(r"^[a-z]+(?:_[a-z]+)*_(?=[A-Za-z0-9]*[0-9A-Z])[A-Za-z0-9]+$")


def start_deadline(seconds: float | None) -> Token:
    """Give the Stripe calls of the current request `seconds` in all (None: no deadline).

    Returns the token `end_deadline` takes to bring back the deadline in force before.
    """
    return _deadline.set(time.monotonic() + seconds if seconds else None)


def end_deadline(token: Token) -> None:
    """End a deadline begun with `start_deadline`, restoring the one before it."""
    _deadline.reset(token)


def deadline_left() -> float | None:
    """Return the seconds left before the current request's deadline, or None without one."""
    deadline = _deadline.get()
    return None if deadline is None else deadline - time.monotonic()


def stripe_endpoint(method: str, url: str) -> str:
    """Return 'POST /v1/subscriptions/{id}' for a call: the route, never the object's id."""
    path = urlsplit(url).path
    segments = ["{id}" if _ID_SEGMENT.match(part) else part for part in path.split("/")]
    return f"{method.upper()} {'/'.join(segments)}"


def unanswered(message: str, *, request_sent: bool,
               should_retry: bool = True) -> stripe.APIConnectionError:
    """Return the SDK's connection error, saying whether the request may have reached Stripe.

    Stripe acts on a request it received even when the answer is lost, so a request that left
    this machine has an unknown outcome until the webhook (or a retry with the same
    idempotency key) settles it; one that never connected changed nothing.
    """
    error = stripe.APIConnectionError(message, should_retry=should_retry)
    error.request_sent = request_sent  # type: ignore[attr-defined]
    return error


def outcome_unknown(exc: BaseException) -> bool:
    """Return True when a failed Stripe call may still have taken effect at Stripe."""
    if isinstance(exc, stripe.APIConnectionError):
        return bool(getattr(exc, "request_sent", True))
    # A 500 that outlived the retries: Stripe documents its result as indeterminate.
    return isinstance(exc, stripe.APIError) and (getattr(exc, "http_status", None) or 0) >= 500


class DeadlineMixin:
    """Bounded retries inside the request's deadline, and a record of every call for metrics.

    The SDK builds a request's headers once and sends the same ones on every retry, so a
    retry carries the same Idempotency-Key (the SDK makes one up for a POST without one).
    """

    def _note_sent(self, sent: bool) -> None:
        state = self._call_state()
        state["sent"] = state.get("sent", False) or sent

    def _call_state(self) -> dict:
        local = self.__dict__.setdefault("_deadline_local", threading.local())
        if not hasattr(local, "state"):
            local.state = {}
        return local.state

    def request_with_retries(self, method, url, headers, post_data=None,
                             max_network_retries=None, *, _usage=None):
        """Send a request with the SDK's retries; say on failure whether it may have acted."""
        local = self.__dict__.setdefault("_deadline_local", threading.local())
        local.state = {"sent": False}
        try:
            return super().request_with_retries(  # type: ignore[misc]
                method, url, headers, post_data, max_network_retries, _usage=_usage)
        except stripe.APIConnectionError as exc:
            # Any attempt that reached Stripe makes the outcome unknown, whatever came last.
            exc.request_sent = getattr(exc, "request_sent", True) or local.state["sent"]
            raise

    def _should_retry(self, response, api_connection_error, num_retries, max_network_retries):
        """Retry as the SDK would, but only when a retry can still end before the deadline."""
        if not super()._should_retry(  # type: ignore[misc]
                response, api_connection_error, num_retries, max_network_retries):
            return False
        left = deadline_left()
        # The next attempt needs its back-off sleep plus time to connect and be answered.
        return left is None or left > stripe.HTTPClient.MAX_DELAY + self.connect_timeout

    def _sleep_time_seconds(self, num_retries: int) -> float:
        """Back off as the SDK does, never past the deadline."""
        sleep = super()._sleep_time_seconds(num_retries)  # type: ignore[misc]
        left = deadline_left()
        return sleep if left is None else max(0.0, min(sleep, left / 4))

    def _attempt_timeouts(self) -> tuple[float, float]:
        """Return (connect, read) timeouts for one attempt: the configured ones, cut to the
        deadline; raise when it has passed."""
        connect, read = self.connect_timeout, self.read_timeout
        left = deadline_left()
        if left is not None:
            if left <= 0.05:
                raise unanswered("the request's deadline passed before Stripe was called",
                                 request_sent=False, should_retry=False)
            connect, read = min(connect, left), min(read, left)
        return connect, read

    def _timed(self, method: str, url: str, send: Callable[[], tuple]) -> tuple:
        """Run one attempt, recording its latency and any error by endpoint."""
        endpoint = stripe_endpoint(method, url)
        started = time.perf_counter()
        try:
            response = send()
        except stripe.APIConnectionError as exc:
            kind = "timeout" if "timeout" in str(exc).lower() or "timed out" in str(
                exc).lower() else "connection"
            metrics.stripe_call(endpoint, time.perf_counter() - started, kind)
            raise
        status = response[1]
        metrics.stripe_call(endpoint, time.perf_counter() - started,
                            None if status < 400 else str(status))
        return response


class DeadlineRequestsClient(DeadlineMixin, stripe.RequestsClient):
    """The SDK's requests-based client with connect and read timeouts and the deadline."""

    name = "requests"

    def __init__(self, connect_timeout: float, read_timeout: float):
        super().__init__(timeout=(connect_timeout, read_timeout))
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self._local_timeout = threading.local()

    @property
    def _timeout(self):
        """Return this thread's current attempt timeouts (read by the SDK for each send)."""
        return getattr(self._local_timeout, "value", (self.connect_timeout, self.read_timeout))

    @_timeout.setter
    def _timeout(self, value) -> None:
        self.__dict__.setdefault("_local_timeout", threading.local()).value = value

    def request(self, method, url, headers, post_data=None):
        """Send one attempt within the timeouts left to the current request."""
        def send():
            self._local_timeout.value = self._attempt_timeouts()
            return super(DeadlineRequestsClient, self).request(method, url, headers, post_data)
        return self._timed(method, url, send)

    def _handle_request_error(self, e: Exception):
        """Raise the SDK's error, marked with whether the request reached Stripe's socket."""
        try:
            super()._handle_request_error(e)
        except stripe.APIConnectionError as exc:
            sent = not _never_connected(e)
            self._note_sent(sent)
            exc.request_sent = sent  # type: ignore[attr-defined]
            raise


def _never_connected(error: Exception) -> bool:
    """Return True when a requests error happened before any byte reached the server."""
    if isinstance(error, requests.exceptions.ConnectTimeout):
        return True
    if isinstance(error, requests.exceptions.ConnectionError):
        reason = error.args[0] if error.args else None
        text = repr(reason)
        return "NewConnectionError" in text or "Connection refused" in text
    return False


class InProcessHTTPClient(DeadlineMixin, stripe.HTTPClient):
    """Carry the SDK's requests to a WSGI app in this process (the embedded sandbox).

    The request keeps the SDK's method, path, headers and form body; only the socket is
    skipped. It is presented under the portal's public address and SANDBOX_PREFIX, so the
    URLs the sandbox hands out (Checkout pages, hosted invoices) work in the browser. When the
    sandbox injects a network fault it says what its socket would have done (a hang, a
    dropped connection), and this client behaves as the socket client would: waits out the
    read timeout, or fails with the request sent.
    """

    name = "in_process"

    def __init__(self, wsgi_app: Callable, base_url: Callable[[], str],
                 connect_timeout: float = 3.0, read_timeout: float = 10.0):
        super().__init__()
        self._wsgi_app = wsgi_app
        self._base_url = base_url
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        # How many API requests went out: operators and tests can see what a page cost.
        self.requests_sent = 0

    def request(self, method, url, headers, post_data=None, *, _usage=None):
        """Send one API request to the WSGI app and return (body, status, headers)."""
        return self._timed(method, url, lambda: self._send(method, url, headers, post_data))

    def _send(self, method, url, headers, post_data):
        _connect, read = self._attempt_timeouts()
        self.requests_sent += 1
        parts = urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        started = time.monotonic()
        client = Client(self._wsgi_app)
        response = client.open(
            path,
            method=method.upper(),
            headers=dict(headers or {}),
            data=post_data,
            base_url=self._base_url() + SANDBOX_PREFIX,
        )
        try:
            fault = response.headers.get(SANDBOX_FAULT_HEADER)
            if fault == "hang" or time.monotonic() - started > read:
                if fault == "hang":
                    time.sleep(max(0.0, read - (time.monotonic() - started)))
                self._note_sent(True)
                raise unanswered(f"Read timed out (read timeout={read})", request_sent=True)
            if fault == "drop":
                self._note_sent(True)
                raise unanswered("Connection aborted: the server closed the connection "
                                 "without a response", request_sent=True)
            # Headers, not dict: the SDK reads Request-Id in two spellings.
            return response.get_data(), response.status_code, Headers(response.headers)
        finally:
            response.close()

    def close(self):
        """Release nothing: no connections are kept."""


def build_client(config: Mapping, http_client: stripe.HTTPClient | None = None
                 ) -> stripe.StripeClient:
    """Return a StripeClient for this configuration (through `http_client` for the sandbox).

    Calls have connect and read timeouts and at most STRIPE_MAX_RETRIES retries, each
    sending the same Idempotency-Key, all inside the web request's deadline.
    """
    retries = int(config.get("STRIPE_MAX_RETRIES", 2))
    if stripe_mode(config) == "sandbox":
        if http_client is None:
            raise RuntimeError("the embedded sandbox is off and no Stripe keys are set")
        return stripe.StripeClient(
            config["SANDBOX_SECRET_KEY"],
            http_client=http_client,
            base_addresses={"api": SANDBOX_API_BASE},
            max_network_retries=retries,
        )
    addresses = {"api": config["STRIPE_API_BASE"]} if config.get("STRIPE_API_BASE") else None
    http_client = DeadlineRequestsClient(float(config.get("STRIPE_CONNECT_TIMEOUT", 3)),
                                         float(config.get("STRIPE_READ_TIMEOUT", 10)))
    return stripe.StripeClient(
        config["STRIPE_SECRET_KEY"], base_addresses=addresses, http_client=http_client,
        max_network_retries=retries,
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
