"""Operations: register-webhook before a secret exists, /metrics, JSON logs, request ids."""
from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from portal import create_app
from portal.sandbox import create_sandbox_app, stop_delivery_thread
from portal.services.catalog_sync import sync_catalog
from portal.services.jobs import enqueue_event, event_queue
from portal.services.logs import JsonFormatter, mask, reset_request_id, set_request_id
from tests.helpers import csrf_from
from tests.sandbox.conftest import serve_wsgi

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def served_sandbox(tmp_path):
    """Serve a sandbox alone over HTTP, as `flask sandbox serve` does."""
    sandbox = create_sandbox_app({"SANDBOX_DB": str(tmp_path / "sandbox.db"),
                                  "SANDBOX_DELIVERY": "manual"})
    serving = serve_wsgi(sandbox)
    yield next(serving)
    serving.close()
    stop_delivery_thread(sandbox)


def test_register_webhook_runs_without_a_webhook_secret_and_prints_it(tmp_path, served_sandbox):
    """The endpoint's secret is what the command is for (https://docs.stripe.com/api/webhook_endpoints/create)."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("STRIPE_", "DATABASE_URL", "REDIS_URL", "PORTAL_"))}
    env.update(INSTANCE_PATH=str(tmp_path / "instance"), STRIPE_SECRET_KEY="sk_test_register",
               STRIPE_PUBLISHABLE_KEY="pk_test_register", STRIPE_API_BASE=served_sandbox)
    (tmp_path / "instance").mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", "billing", "register-webhook",
         "https://billing.example/webhooks/stripe"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    secret = result.stdout.split("STRIPE_WEBHOOK_SECRET=")[1].split()[0]
    assert secret.startswith("whsec_")
    # Serving still refuses to start without it: signatures could not be checked.
    serve = subprocess.run(
        [sys.executable, "-c", "from portal import create_app; create_app()"],
        cwd=ROOT, env={**env, "PORTAL_BASE_URL": "https://billing.example"},
        capture_output=True, text=True, timeout=60)
    assert serve.returncode != 0
    assert "STRIPE_WEBHOOK_SECRET is not" in serve.stderr


def test_metrics_need_the_token_or_an_allowed_address(app, client, make_user, login):
    assert client.get("/metrics").status_code == 404
    app.config["METRICS_TOKEN"] = "metrics-secret-token"
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 404
    login(make_user())
    client.get("/billing/")
    answer = client.get("/metrics", headers={"Authorization": "Bearer metrics-secret-token"})
    assert answer.status_code == 200
    text = answer.get_data(as_text=True)
    # Latency by endpoint name, never by raw path.
    assert 'portal_http_request_duration_seconds_count{endpoint="billing.dashboard"' in text
    assert "portal_webhook_backlog" in text
    app.config["METRICS_TOKEN"] = None
    app.config["METRICS_ALLOWED_IPS"] = "127.0.0.0/8"
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "127.0.0.1"}).status_code == 200
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "10.1.2.3"}).status_code == 404


def test_webhook_and_stripe_metrics_follow_a_checkout(app, client, stripe_api, make_user, login,
                                                      deliver_webhooks):
    app.config["METRICS_ALLOWED_IPS"] = "127.0.0.1"
    sync_catalog()
    user = make_user()
    login(user)
    token = csrf_from(client, "/billing/plans")
    started = client.post("/billing/checkout", data={"csrf_token": token,
                                                     "lookup_key": "pro_month"})
    assert started.status_code == 303
    deliver_webhooks()
    text = client.get("/metrics", environ_base={"REMOTE_ADDR": "127.0.0.1"}).get_data(
        as_text=True)
    assert 'portal_stripe_request_duration_seconds_count{endpoint="POST /v1/checkout/sessions"}' \
        in text
    assert 'portal_stripe_request_duration_seconds_count{endpoint="POST /v1/customers"}' in text
    assert 'portal_webhook_events_received_total{type="customer.created"}' in text
    assert 'portal_webhook_events_processed_total{type="customer.created"}' in text
    assert 'portal_webhook_lag_seconds_count{type="customer.created"}' in text


def test_health_reports_backlog_and_stripe_without_failing_for_stripe(client):
    report = client.get("/health").get_json()
    assert report["status"] == "ok"
    assert report["webhook_backlog"] == {"pending": 0, "failed": 0}
    assert report["stripe"]["status"] == "ok"


def test_request_id_is_answered_and_accepted_from_the_caller(client):
    answer = client.get("/health", headers={"X-Request-Id": "lb-1234567890"})
    assert answer.headers["X-Request-Id"] == "lb-1234567890"
    fresh = client.get("/health", headers={"X-Request-Id": "bad id with spaces"})
    assert fresh.headers["X-Request-Id"] != "bad id with spaces"
    assert len(fresh.headers["X-Request-Id"]) == 16


def test_json_log_lines_carry_the_request_id_and_mask_secrets():
    token = set_request_id("req-abcdef12")
    try:
        record = logging.LogRecord(
            "portal.test", logging.WARNING, __file__, 1,
            "card %s for jane.doe@example.com with sk_live_abcdef123456 and whsec_zzz999",
            ("4242 4242 4242 4242",), None)
        record.customer_email = "someone@example.org"
        line = JsonFormatter().format(record)
    finally:
        reset_request_id(token)
    entry = json.loads(line)
    assert "\n" not in line
    assert entry["request_id"] == "req-abcdef12"
    assert entry["level"] == "WARNING"
    for secret in ("4242 4242 4242 4242", "jane.doe@", "sk_live_abcdef123456", "whsec_zzz999",
                   "someone@"):
        assert secret not in line
    assert "j***@example.com" in entry["message"]
    assert entry["customer_email"] == "s***@example.org"
    assert mask("pk_test_abc and bp_live_xyz") == "pk_test_*** and bp_live_***"


def test_request_id_is_carried_into_the_rq_job(app, make_user):
    """An event queued for RQ keeps the id of the request that received it."""
    redis_url = os.environ.get("TEST_REDIS_URL")
    if not redis_url:
        pytest.skip("TEST_REDIS_URL is not set: RQ needs Redis")
    app.config.update(WEBHOOK_PROCESSING="rq", REDIS_URL=redis_url)
    queue = event_queue(app.config)
    queue.empty()
    token = set_request_id("req-carried-1234")
    try:
        assert enqueue_event(987654) == "queued"
    finally:
        reset_request_id(token)
    job = queue.fetch_job("stripe-event-987654")
    assert job.meta["request_id"] == "req-carried-1234"
    queue.empty()


def test_stripe_deadline_must_stay_below_the_worker_timeout(monkeypatch, tmp_path):
    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("PORTAL_WORKER_TIMEOUT", "30")
    with pytest.raises(RuntimeError, match="STRIPE_REQUEST_DEADLINE"):
        create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://", "STRIPE_REQUEST_DEADLINE": 30.0,
                    "TESTING": True})
    assert create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://", "TESTING": True})
