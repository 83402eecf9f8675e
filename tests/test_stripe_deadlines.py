"""Stripe calls end within the request's deadline: a hung Stripe never holds a worker.

A real socket server stands in for a Stripe that accepts connections and never answers
(issue 14's reproduction). Stripe documents that a request which timed out may still have
been applied, and that retrying with the same idempotency key is safe
(https://docs.stripe.com/error-handling#network-errors, https://docs.stripe.com/api/idempotent_requests).
"""
from __future__ import annotations

import socket
import threading
import time

import pytest

from portal import create_app
from portal.extensions import db
from portal.models import Subscription
from tests import factories
from tests.factories import DEFAULT_PASSWORD
from tests.helpers import csrf_from, free_port


class HangingServer:
    """Accept TCP connections, read what arrives, and never answer."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.connections: list[socket.socket] = []
        self.requests: list[bytes] = []
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        self.sock.settimeout(0.1)
        while not self.stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            conn.settimeout(0.5)
            self.connections.append(conn)
            try:
                self.requests.append(conn.recv(65536))
            except OSError:
                pass

    def close(self):
        self.stopped.set()
        self.thread.join(timeout=5)
        for conn in self.connections:
            conn.close()
        self.sock.close()


@pytest.fixture
def hanging_stripe():
    server = HangingServer()
    yield server
    server.close()


# Each test takes the `app` fixture too: it wipes the rows these tests create afterwards.
def stripe_app(database_url, tmp_path, monkeypatch, api_base, **settings):
    """Build a portal configured with Stripe keys pointing at `api_base`."""
    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path))
    return create_app({
        "SQLALCHEMY_DATABASE_URI": database_url, "TESTING": True, "PORTAL_ENV": "testing",
        "SECRET_KEY": "x", "MAIL_DELIVERY": "inline", "PORTAL_BASE_URL": "http://localhost",
        "STRIPE_SECRET_KEY": "sk_test_hung", "STRIPE_PUBLISHABLE_KEY": "pk_test_hung",
        "STRIPE_WEBHOOK_SECRET": "whsec_hung", "STRIPE_API_BASE": api_base, **settings})


def signed_in_subscriber(portal_app):
    """Return a client signed in as a customer with a renewing subscription in the mirror."""
    with portal_app.app_context():
        user = factories.make_user()
        factories.make_subscription(user.account)
        email = user.email
    client = portal_app.test_client()
    token = csrf_from(client, "/auth/login")
    client.post("/auth/login", data={"email": email, "password": DEFAULT_PASSWORD,
                                     "csrf_token": token})
    return client


def cancel(client):
    token = csrf_from(client, "/billing/subscription/cancel")
    started = time.monotonic()
    response = client.post("/billing/subscription/cancel",
                           data={"csrf_token": token, "feedback": "", "comment": ""})
    return response, time.monotonic() - started


def test_hung_stripe_cancel_answers_within_the_deadline_with_the_truth(
        app, database_url, tmp_path, monkeypatch, hanging_stripe):
    # Read timeout alone would allow 3 attempts x 10 s; the request's deadline cuts it to 2 s.
    portal_app = stripe_app(database_url, tmp_path, monkeypatch, f"http://127.0.0.1:{hanging_stripe.port}",
                     STRIPE_CONNECT_TIMEOUT=1.0, STRIPE_READ_TIMEOUT=10.0,
                     STRIPE_REQUEST_DEADLINE=2.0, STRIPE_MAX_RETRIES=2)
    client = signed_in_subscriber(portal_app)
    response, elapsed = cancel(client)
    assert elapsed < 4.0, f"the cancel took {elapsed:.1f} s despite a 2 s deadline"
    # The confirmation page again, saying what happened, with its button to try again.
    assert response.status_code == 503
    assert hanging_stripe.requests, "the request never reached the hanging server"
    assert b"POST /v1/subscriptions/" in hanging_stripe.requests[0]
    page = response.get_data(as_text=True)
    assert 'action="/billing/subscription/cancel"' in page
    # The request reached Stripe: whether it acted is unknown, and the page says so.
    assert "did not confirm whether that went through" in page
    with portal_app.app_context():
        assert db.session.scalar(db.select(Subscription.cancel_at_period_end)) is False
        # Back to the pool before the pool is closed: a checked-out connection would leak.
        db.session.remove()
        db.engine.dispose()


def test_each_attempt_has_a_read_timeout_and_retries_keep_the_idempotency_key(
        app, database_url, tmp_path, monkeypatch, hanging_stripe):
    # No deadline binds here: 1 s read timeout, 1 retry, so two attempts reach the server.
    portal_app = stripe_app(database_url, tmp_path, monkeypatch, f"http://127.0.0.1:{hanging_stripe.port}",
                     STRIPE_CONNECT_TIMEOUT=1.0, STRIPE_READ_TIMEOUT=1.0,
                     STRIPE_REQUEST_DEADLINE=15.0, STRIPE_MAX_RETRIES=1)
    client = signed_in_subscriber(portal_app)
    response, elapsed = cancel(client)
    assert response.status_code == 503
    assert elapsed < 6.0
    posts = [raw for raw in hanging_stripe.requests if raw.startswith(b"POST ")]
    assert len(posts) == 2

    def key(raw: bytes) -> bytes:
        for line in raw.split(b"\r\n"):
            if line.lower().startswith(b"idempotency-key:"):
                return line.split(b":", 1)[1].strip()
        raise AssertionError("no Idempotency-Key header")

    assert key(posts[0]) == key(posts[1])
    with portal_app.app_context():
        db.engine.dispose()


def test_unreachable_stripe_says_nothing_was_charged(app, database_url, tmp_path, monkeypatch):
    portal_app = stripe_app(database_url, tmp_path, monkeypatch, f"http://127.0.0.1:{free_port()}",
                     STRIPE_MAX_RETRIES=0)
    client = signed_in_subscriber(portal_app)
    response, _elapsed = cancel(client)
    assert response.status_code == 503
    assert "is not answering, so nothing was changed or charged" in response.get_data(
        as_text=True)
    with portal_app.app_context():
        db.engine.dispose()


def test_health_answers_while_stripe_hangs_and_never_waits_for_it(
        app, database_url, tmp_path, monkeypatch, hanging_stripe):
    portal_app = stripe_app(database_url, tmp_path, monkeypatch, f"http://127.0.0.1:{hanging_stripe.port}",
                     STRIPE_CONNECT_TIMEOUT=1.0, STRIPE_READ_TIMEOUT=1.0, STRIPE_MAX_RETRIES=0,
                     STRIPE_HEALTH_INTERVAL=60.0)
    client = portal_app.test_client()
    started = time.monotonic()
    first = client.get("/health")
    assert time.monotonic() - started < 0.9
    assert first.status_code == 200
    assert first.get_json()["stripe"]["status"] == "unknown"
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        report = client.get("/health").get_json()
        if report["stripe"]["status"] != "unknown":
            break
        time.sleep(0.1)
    assert report["stripe"]["status"] == "unreachable"
    assert report["status"] == "ok"
    assert report["webhook_backlog"] == {"pending": 0, "failed": 0}
    # Cached: more probes within the interval make no further call to Stripe.
    calls = len(hanging_stripe.requests)
    for _ in range(5):
        assert client.get("/health").status_code == 200
    time.sleep(0.3)
    assert len(hanging_stripe.requests) == calls
    with portal_app.app_context():
        db.engine.dispose()
