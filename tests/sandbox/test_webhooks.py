"""Webhook endpoints, signed delivery through the outbox, retries with backoff."""

from __future__ import annotations

import json
import time

import pytest
import stripe

from portal.sandbox import deliver_due
from portal.sandbox.core.webhooks import GIVE_UP_AFTER, retry_delay
from tests.sandbox.conftest import sandbox_request


def endpoint(client, url, events=("*",)):
    """Register a webhook endpoint and return it (with its one-time secret)."""
    return client.v1.webhook_endpoints.create(params={"url": url, "enabled_events": list(events)})


def test_endpoint_crud_and_secret_shown_once(stripe_client):
    created = endpoint(stripe_client, "https://portal.test/stripe/webhook", ["charge.succeeded"])
    assert created.secret.startswith("whsec_") and created.status == "enabled"
    fetched = stripe_client.v1.webhook_endpoints.retrieve(created.id)
    assert "secret" not in fetched
    updated = stripe_client.v1.webhook_endpoints.update(
        created.id, params={"enabled_events": ["*"], "disabled": True, "metadata": {"env": "dev"}}
    )
    assert updated.enabled_events == ["*"] and updated.status == "disabled"
    assert len(stripe_client.v1.webhook_endpoints.list().data) == 1
    with pytest.raises(stripe.InvalidRequestError):
        endpoint(stripe_client, "ftp://nowhere")
    assert stripe_client.v1.webhook_endpoints.delete(created.id).deleted is True


def test_signed_delivery_verifies_with_the_sdk(
    stripe_client, sandbox, webhook_receiver, make_customer
):
    hook = endpoint(stripe_client, webhook_receiver.url, ["customer.created"])
    customer = make_customer()
    stripe_client.v1.products.create(params={"name": "not subscribed"})
    assert deliver_due(sandbox.app) == 1
    [post] = webhook_receiver.received
    event = stripe.Webhook.construct_event(
        post["body"].decode(), post["headers"]["Stripe-Signature"], hook.secret
    )
    assert event.type == "customer.created"
    assert event.data.object.id == customer.id
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(
            post["body"].decode(), post["headers"]["Stripe-Signature"], "whsec_wrong"
        )
    assert stripe_client.v1.events.retrieve(event.id).pending_webhooks == 0
    assert deliver_due(sandbox.app) == 0


def test_failed_delivery_is_retried_with_backoff(
    stripe_client, sandbox, webhook_receiver, make_customer
):
    hook = endpoint(stripe_client, webhook_receiver.url)
    webhook_receiver.statuses = [500, 503]
    make_customer()
    event = stripe_client.v1.events.list().data[0]
    start = int(time.time())
    assert deliver_due(sandbox.app, now=start) == 0
    assert stripe_client.v1.events.retrieve(event.id).pending_webhooks == 1
    assert deliver_due(sandbox.app, now=start + 30) == 0
    assert len(webhook_receiver.received) == 1
    assert deliver_due(sandbox.app, now=start + 60) == 0
    assert deliver_due(sandbox.app, now=start + 60 + 179) == 0
    assert len(webhook_receiver.received) == 2
    assert deliver_due(sandbox.app, now=start + 60 + 180) == 1
    assert len(webhook_receiver.received) == 3
    bodies = {json.loads(r["body"])["id"] for r in webhook_receiver.received}
    assert bodies == {event.id}
    for post in webhook_receiver.received:
        stripe.Webhook.construct_event(
            post["body"].decode(), post["headers"]["Stripe-Signature"], hook.secret
        )
    assert stripe_client.v1.events.retrieve(event.id).pending_webhooks == 0
    log = sandbox_request(stripe_client, "get", "/v1/sandbox/webhook_deliveries", event=event.id)
    [delivery] = log["data"]
    assert delivery["status"] == "delivered" and delivery["attempts"] == 3
    assert [a["status"] for a in delivery["attempt_log"]] == [500, 503, 200]
    assert delivery["attempt_log"][0]["error"] == "HTTP 500"


def test_backoff_schedule():
    assert [retry_delay(n) for n in range(1, 9)] == [60, 180, 540, 1620, 4860, 14580, 21600, 21600]
    assert GIVE_UP_AFTER == 3 * 24 * 3600


def test_unreachable_endpoint_records_the_error_and_gives_up(start_sandbox):
    def refuse(url, headers, body):
        raise ConnectionRefusedError("connection refused")

    box = start_sandbox(deliver=refuse)
    client = box.client()
    endpoint(client, "http://127.0.0.1:9/hook")
    client.v1.customers.create()
    start = int(time.time())
    assert deliver_due(box.app, now=start) == 0
    [delivery] = sandbox_request(client, "get", "/v1/sandbox/webhook_deliveries")["data"]
    assert "connection refused" in delivery["last_error"]
    assert delivery["status"] == "pending"
    deliver_due(box.app, now=start + GIVE_UP_AFTER)
    [delivery] = sandbox_request(client, "get", "/v1/sandbox/webhook_deliveries")["data"]
    assert delivery["status"] == "failed" and delivery["attempts"] == 2


def test_inline_delivery_happens_before_the_response(start_sandbox, webhook_receiver):
    box = start_sandbox(delivery="inline")
    client = box.client()
    endpoint(client, webhook_receiver.url, ["payment_intent.succeeded", "charge.refunded"])
    pi = client.v1.payment_intents.create(
        params={"amount": 700, "currency": "usd", "payment_method": "pm_card_visa", "confirm": True}
    )
    assert [json.loads(r["body"])["type"] for r in webhook_receiver.received] == [
        "payment_intent.succeeded"
    ]
    client.v1.refunds.create(params={"payment_intent": pi.id, "amount": 100})
    refunded = json.loads(webhook_receiver.received[-1]["body"])
    assert refunded["type"] == "charge.refunded"
    assert refunded["data"]["previous_attributes"] == {"amount_refunded": 0}


def test_thread_delivery(start_sandbox, webhook_receiver):
    box = start_sandbox(delivery="thread")
    client = box.client()
    endpoint(client, webhook_receiver.url, ["customer.created"])
    client.v1.customers.create()
    deadline = time.time() + 5
    while not webhook_receiver.received and time.time() < deadline:
        time.sleep(0.05)
    assert len(webhook_receiver.received) == 1


def test_deliveries_can_be_triggered_over_http(stripe_client, webhook_receiver, make_customer):
    endpoint(stripe_client, webhook_receiver.url, ["customer.created"])
    make_customer()
    run = sandbox_request(stripe_client, "post", "/v1/sandbox/webhook_deliveries/deliver")
    assert run["delivered"] == 1
