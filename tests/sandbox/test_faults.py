"""Fault injection over real HTTP: each kind fails the way Stripe or the network would.

Stripe's error handling (https://docs.stripe.com/error-handling): a 500 ``api_error`` and a
429 ``rate_limit`` (https://docs.stripe.com/error-codes#rate-limit,
https://docs.stripe.com/rate-limits) change nothing; a network error leaves the outcome
unknown, and a retry with the same idempotency key
(https://docs.stripe.com/api/idempotent_requests) returns the first result instead of acting
twice.
"""

from __future__ import annotations

import time

import pytest
import requests
import stripe

from portal.sandbox import create_sandbox_app, stop_delivery_thread
from tests.sandbox.conftest import API_KEY, serve_wsgi

AUTH = {"Authorization": f"Bearer {API_KEY}"}


@pytest.fixture
def faulty(tmp_path):
    """Serve a sandbox with fault injection enabled; yield its base URL."""
    app = create_sandbox_app({"SANDBOX_DB": str(tmp_path / "sandbox.db"),
                              "SANDBOX_DELIVERY": "manual", "SANDBOX_FAULT_INJECTION": True})
    serving = serve_wsgi(app)
    yield next(serving)
    serving.close()
    stop_delivery_thread(app)


def client(url: str, read_timeout: float = 5.0, retries: int = 0) -> stripe.StripeClient:
    http = stripe.RequestsClient(timeout=(2, read_timeout))
    return stripe.StripeClient(API_KEY, base_addresses={"api": url}, http_client=http,
                               max_network_retries=retries)


def inject(url: str, **fault) -> dict:
    response = requests.post(f"{url}/v1/sandbox/faults", data=fault, headers=AUTH, timeout=5)
    assert response.status_code == 200, response.text
    return response.json()


def customers(url: str) -> list[str]:
    return [c.id for c in client(url).v1.customers.list(params={"limit": 100}).data]


def test_fault_injection_is_refused_unless_enabled(start_sandbox):
    plain = start_sandbox()
    response = requests.post(f"{plain.url}/v1/sandbox/faults", headers=AUTH, timeout=5,
                             data={"method": "POST", "path": "/v1/customers", "kind": "drop"})
    assert response.status_code == 403
    assert "not enabled" in response.json()["error"]["message"]
    assert requests.get(f"{plain.url}/v1/sandbox/faults", headers=AUTH,
                        timeout=5).status_code == 403


def test_faults_are_validated(faulty):
    bad_kind = requests.post(f"{faulty}/v1/sandbox/faults", headers=AUTH, timeout=5,
                             data={"method": "POST", "path": "/v1/customers", "kind": "fire"})
    assert bad_kind.status_code == 400
    assert bad_kind.json()["error"]["param"] == "kind"
    outside = requests.post(f"{faulty}/v1/sandbox/faults", headers=AUTH, timeout=5,
                            data={"method": "POST", "path": "/v1/sandbox/*", "kind": "drop"})
    assert outside.status_code == 400
    missing = requests.post(f"{faulty}/v1/sandbox/faults", headers=AUTH, timeout=5,
                            data={"method": "POST", "kind": "drop"})
    assert missing.status_code == 400
    assert missing.json()["error"]["param"] == "path"
    assert requests.post(f"{faulty}/v1/sandbox/faults", data={}, timeout=5).status_code == 401


def test_api_error_changes_nothing_and_a_retry_with_the_same_key_succeeds_once(faulty):
    inject(faulty, method="POST", path="/v1/customers", kind="api_error")
    with pytest.raises(stripe.APIError) as failed:
        client(faulty).v1.customers.create(options={"idempotency_key": "cust-1"})
    assert failed.value.http_status == 500
    assert customers(faulty) == []
    # The SDK retries a 500 with the same key: one customer in the end.
    inject(faulty, method="POST", path="/v1/customers", kind="api_error")
    created = client(faulty, retries=1).v1.customers.create(
        options={"idempotency_key": "cust-1"})
    assert customers(faulty) == [created.id]


def test_rate_limit_answers_429_rate_limit_and_changes_nothing(faulty):
    inject(faulty, method="POST", path="/v1/customers", kind="rate_limit", count=2)
    for _ in range(2):
        with pytest.raises(stripe.RateLimitError) as limited:
            client(faulty).v1.customers.create()
        assert limited.value.http_status == 429
        assert limited.value.json_body["error"]["code"] == "rate_limit"
    assert customers(faulty) == []
    client(faulty).v1.customers.create()
    assert len(customers(faulty)) == 1


def test_faults_match_method_and_path_and_are_counted(faulty):
    fault = inject(faulty, method="POST", path="/v1/customers/*", kind="rate_limit", count=1)
    assert (fault["remaining"], fault["hits"]) == (1, 0)
    customer = client(faulty).v1.customers.create()  # POST /v1/customers: not matched
    client(faulty).v1.customers.retrieve(customer.id)  # GET: not matched
    with pytest.raises(stripe.RateLimitError):
        client(faulty).v1.customers.update(customer.id, params={"name": "A"})
    client(faulty).v1.customers.update(customer.id, params={"name": "B"})  # count used up
    listed = requests.get(f"{faulty}/v1/sandbox/faults", headers=AUTH, timeout=5).json()
    assert [(f["remaining"], f["hits"]) for f in listed["data"]] == [(0, 1)]
    cleared = requests.delete(f"{faulty}/v1/sandbox/faults", headers=AUTH, timeout=5).json()
    assert cleared["deleted"] == 1


def test_latency_delays_the_answer_and_the_request_still_runs(faulty):
    inject(faulty, method="POST", path="/v1/customers", kind="latency", latency_ms=1500)
    with pytest.raises(stripe.APIConnectionError):
        client(faulty, read_timeout=0.5).v1.customers.create()
    # The client gave up; the request itself ran once its latency had passed.
    deadline = time.monotonic() + 5
    while not customers(faulty) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(customers(faulty)) == 1


def test_hang_never_answers_and_does_nothing(faulty):
    inject(faulty, method="POST", path="/v1/customers", kind="hang", hang_s=1.5)
    started = time.monotonic()
    with pytest.raises(stripe.APIConnectionError) as hung:
        client(faulty, read_timeout=0.5).v1.customers.create()
    assert "timed out" in str(hung.value).lower()
    assert time.monotonic() - started >= 0.5
    time.sleep(1.2)  # past the hang: the connection is closed, still with nothing done
    assert customers(faulty) == []


def test_dropped_connection_does_nothing(faulty):
    inject(faulty, method="POST", path="/v1/customers", kind="drop")
    with pytest.raises(stripe.APIConnectionError):
        client(faulty).v1.customers.create()
    assert customers(faulty) == []


def test_lost_response_commits_and_the_same_key_replays_it(faulty):
    inject(faulty, method="POST", path="/v1/customers", kind="lose_response")
    with pytest.raises(stripe.APIConnectionError):
        client(faulty).v1.customers.create(params={"name": "Once"},
                                           options={"idempotency_key": "lost-1"})
    created = customers(faulty)
    assert len(created) == 1
    again = client(faulty).v1.customers.create(params={"name": "Once"},
                                               options={"idempotency_key": "lost-1"})
    assert again.id == created[0]
    assert again.last_response.headers.get("Idempotent-Replayed") == "true"
    assert customers(faulty) == created


def test_the_sdk_retries_a_lost_response_with_its_key_and_acts_once(faulty):
    inject(faulty, method="POST", path="/v1/customers", kind="lose_response")
    created = client(faulty, retries=2).v1.customers.create(params={"name": "Retried"})
    assert customers(faulty) == [created.id]
