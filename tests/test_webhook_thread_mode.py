"""WEBHOOK_PROCESSING="thread": the intake answers "queued" at once and a background thread of
the same process applies the event; events a dead process stored but never applied are swept."""
from __future__ import annotations

import time

import pytest

from portal.extensions import db
from portal.models import Account, WebhookEvent
from portal.services.event_processor import event_processor, stop_event_processor
from portal.services.jobs import process_measured
from portal.services.stripe_client import webhook_secret
from portal.services.webhooks import record_event
from tests.factories import make_account
from tests.test_webhooks import customer_object, event_body, post_event, sign


def event_status(stripe_event_id: str) -> str | None:
    """Return the stored status of an event, read afresh."""
    db.session.rollback()
    return db.session.scalar(db.select(WebhookEvent.status).where(
        WebhookEvent.stripe_event_id == stripe_event_id))


def wait_until_processed(stripe_event_id: str, seconds: float = 30.0) -> None:
    """Poll the inbox until the event is processed; fail when `seconds` pass first."""
    deadline = time.monotonic() + seconds
    while event_status(stripe_event_id) != "processed":
        if time.monotonic() > deadline:
            pytest.fail(f"{stripe_event_id} is still {event_status(stripe_event_id)!r}")
        time.sleep(0.02)


@pytest.fixture
def thread_mode(app):
    """Switch the app to thread processing; stop its processor thread afterwards."""
    app.config.update(WEBHOOK_PROCESSING="thread")
    yield app
    stop_event_processor(app)


def test_webhook_is_answered_queued_and_applied_by_the_thread(thread_mode, client, make_user):
    user = make_user(account=make_account(stripe_customer_id="cus_thread"))
    body = event_body("customer.updated", customer_object("cus_thread", "pm_thread"),
                      event_id="evt_thread", created=1_700_000_000)
    response = post_event(client, thread_mode, body)
    assert response.status_code == 200
    assert response.get_json() == {"received": True, "id": "evt_thread", "status": "queued"}
    wait_until_processed("evt_thread")
    assert db.session.get(Account, user.account_id).default_payment_method_id == "pm_thread"
    row = db.session.scalar(db.select(WebhookEvent))
    assert (row.attempts, row.last_error) == (1, None)
    # A re-delivery is still a duplicate, acknowledged and not applied again.
    again = post_event(client, thread_mode, body)
    assert again.get_json()["duplicate"] is True
    assert db.session.scalar(db.select(WebhookEvent.attempts)) == 1


def test_events_a_dead_process_left_pending_are_swept(thread_mode, make_user):
    thread_mode.config.update(WEBHOOK_SWEEP_INTERVAL_S=0.1, WEBHOOK_SWEEP_AFTER_S=0)
    make_user(account=make_account(stripe_customer_id="cus_before"))
    make_user(account=make_account(stripe_customer_id="cus_after"))

    def store_only(customer_id: str, event_id: str) -> None:
        """Store a signed event the way the intake does, as if the process died right after."""
        body = event_body("customer.updated", customer_object(customer_id, f"pm_{customer_id}"),
                          event_id=event_id, created=1_700_000_000)
        record_event(body, sign(body, webhook_secret()))

    # Left before this process started: the thread's first sweep finds it.
    store_only("cus_before", "evt_left_before")
    event_processor(thread_mode, process_measured)
    wait_until_processed("evt_left_before")
    # Left while the thread was idle: a later sweep finds it.
    store_only("cus_after", "evt_left_while_idle")
    wait_until_processed("evt_left_while_idle")
    accounts = db.session.scalars(db.select(Account).where(
        Account.stripe_customer_id.in_(["cus_before", "cus_after"])))
    assert {a.stripe_customer_id: a.default_payment_method_id for a in accounts} == {
        "cus_before": "pm_cus_before", "cus_after": "pm_cus_after"}


def test_recent_pending_events_are_left_to_the_process_that_stored_them(app):
    from portal.services.event_processor import forgotten_events

    body = event_body("customer.updated", customer_object("cus_recent"),
                      event_id="evt_recent", created=1_700_000_000)
    row = record_event(body, sign(body, webhook_secret()))
    assert forgotten_events(60) == []
    assert forgotten_events(0) == [row.id]


def test_processing_mode_defaults_to_thread_without_redis_and_refuses_unknown_modes(
        database_url, monkeypatch, tmp_path):
    from portal import create_app

    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path))
    monkeypatch.delenv("REDIS_URL", raising=False)
    base = {"SQLALCHEMY_DATABASE_URI": "sqlite://", "TESTING": True, "PORTAL_ENV": "testing",
            "SECRET_KEY": "x"}
    assert create_app(base).config["WEBHOOK_PROCESSING"] == "thread"
    with_redis = create_app({**base, "REDIS_URL": "redis://127.0.0.1:6379/5"})
    assert with_redis.config["WEBHOOK_PROCESSING"] == "rq"
    monkeypatch.setenv("WEBHOOK_PROCESSING", "inline")
    assert create_app(base).config["WEBHOOK_PROCESSING"] == "inline"
    monkeypatch.setenv("WEBHOOK_PROCESSING", "celery")
    with pytest.raises(RuntimeError, match="WEBHOOK_PROCESSING"):
        create_app(base)
