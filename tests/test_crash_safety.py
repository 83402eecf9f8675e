"""Crashes lose nothing: a failing handler commits nothing, a killed worker's events still run,
and the inbox is pruned of old processed events only."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from portal.extensions import db
from portal.models import Invoice, InvoicePayment, WebhookEvent
from portal.models.types import utcnow
from portal.services.webhooks import retry_failed_events
from tests.helpers import customer_with_card, skip_or_fail
from tests.test_mirror_order import (
    mirror_of_stripe_now,
    prices,
    run_lifecycles,
    snapshot,
    wipe,
)
from tests.test_webhook_lifecycle import capture_deliveries, post_all

ROOT = Path(__file__).resolve().parent.parent

REFUSE_INVOICES = {
    "sqlite": ["CREATE TRIGGER refuse_invoices BEFORE INSERT ON invoices "
               "BEGIN SELECT RAISE(ABORT, 'disk full'); END"],
    "postgresql": ["CREATE OR REPLACE FUNCTION refuse_invoices() RETURNS trigger "
                   "LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'disk full'; END $$",
                   "DROP TRIGGER IF EXISTS refuse_invoices ON invoices",
                   "CREATE TRIGGER refuse_invoices BEFORE INSERT ON invoices "
                   "FOR EACH ROW EXECUTE FUNCTION refuse_invoices()"],
}
ALLOW_INVOICES = {
    "sqlite": ["DROP TRIGGER refuse_invoices"],
    "postgresql": ["DROP TRIGGER refuse_invoices ON invoices", "DROP FUNCTION refuse_invoices()"],
}


def run_sql(statements: list[str]) -> None:
    """Run DDL on its own connection, committed (the session's locks released first)."""
    db.session.rollback()
    with db.engine.begin() as connection:
        for statement in statements:
            connection.execute(text(statement))


def test_a_handler_failing_midway_commits_nothing_and_the_event_runs_again(
        app, client, stripe_api, make_user):
    account = make_user().account
    customer_with_card(stripe_api, account, "pm_card_visa")
    stripe_api.v1.subscriptions.create(params={
        "customer": account.stripe_customer_id,
        "items": [{"price": prices(stripe_api)[0]}]})
    paid = [d for d in capture_deliveries(app) if json.loads(d[1])["type"] == "invoice.paid"]
    assert len(paid) == 1
    dialect = db.engine.dialect.name
    # The database refuses the invoice row, after the handler has already written the
    # invoice's payments: the failure comes midway through the event.
    run_sql(REFUSE_INVOICES[dialect])
    try:
        assert post_all(client, paid) == [200]
        db.session.expire_all()
        event = db.session.scalar(db.select(WebhookEvent))
        assert event.status == "failed" and "disk full" in event.last_error
        for model in (Invoice, InvoicePayment):
            assert db.session.scalar(db.select(db.func.count()).select_from(model)) == 0, model
    finally:
        run_sql(ALLOW_INVOICES[dialect])
    assert retry_failed_events() == {"processed": 1}
    db.session.expire_all()
    invoice = db.session.scalar(db.select(Invoice))
    assert invoice.status == "paid" and invoice.account_id == account.id
    assert db.session.scalar(db.select(InvoicePayment)).stripe_invoice_id == \
        invoice.stripe_invoice_id


def test_prune_keeps_failed_pending_and_recent_events(app):
    old = utcnow() - timedelta(days=40)
    for number, (status, received) in enumerate([
            ("processed", old), ("ignored", old), ("failed", old), ("pending", old),
            ("processed", utcnow() - timedelta(days=2))]):
        db.session.add(WebhookEvent(stripe_event_id=f"evt_{number}", type="invoice.paid",
                                    stripe_created=1, payload="{}", status=status,
                                    received_at=received))
    db.session.commit()
    result = app.test_cli_runner().invoke(args=["billing", "prune-events", "--days", "30"])
    assert result.exit_code == 0, result.output
    assert "Pruned 2 processed event(s)" in result.output
    assert sorted(db.session.scalars(db.select(WebhookEvent.stripe_event_id))) == [
        "evt_2", "evt_3", "evt_4"]
    refused = app.test_cli_runner().invoke(args=["billing", "prune-events", "--days", "1"])
    assert refused.exit_code != 0 and "--days" in refused.output


def start_worker(env: dict, log: Path) -> subprocess.Popen:
    """Start `flask --app app billing worker` in a process group of its own."""
    with log.open("a") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "app", "billing", "worker"],
            cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT,
            start_new_session=True)


def counts() -> dict[str, int]:
    """Return the stored events by status."""
    db.session.rollback()
    return dict(db.session.execute(db.select(WebhookEvent.status, db.func.count())
                                   .group_by(WebhookEvent.status)).all())


def wait_for(condition, seconds: float, process: subprocess.Popen, log: Path) -> None:
    """Poll `condition` until true; fail with the worker's log when time runs out."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline or process.poll() is not None:
            pytest.fail(f"worker did not get there ({counts()}):\n{log.read_text()[-3000:]}")
        time.sleep(0.05)


def test_a_killed_worker_loses_no_event(app, client, stripe_api, make_user, database_url,
                                        tmp_path):
    redis_url = os.environ.get("TEST_REDIS_URL")
    if not redis_url:
        skip_or_fail("set TEST_REDIS_URL to test RQ workers", "REQUIRE_REDIS")
    from portal.services.jobs import event_queue

    deliveries = []
    accounts = []
    for _ in range(2):
        accounts += run_lifecycles(stripe_api, make_user)
        deliveries += capture_deliveries(app)
    links = {account.id: account.stripe_customer_id for account in accounts}
    with app.test_request_context("/"):
        expected = mirror_of_stripe_now(links)
    wipe(links)
    app.config.update(REDIS_URL=redis_url, WEBHOOK_PROCESSING="rq")
    queue = event_queue(app.config)
    queue.empty()
    assert set(post_all(client, deliveries)) == {200}
    assert counts() == {"pending": len(deliveries)} and queue.count == len(deliveries)

    instance = Path(os.environ["INSTANCE_PATH"])
    # The worker's embedded sandbox must not post webhooks of its own in the meantime.
    (instance / "config.py").write_text('SANDBOX_DELIVERY = "manual"\n')
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("STRIPE_", "PORTAL_ENV"))}
    env.update(DATABASE_URL=database_url, REDIS_URL=redis_url, INSTANCE_PATH=str(instance),
               PORTAL_ENV="development", PORTAL_BASE_URL="http://localhost")
    log = tmp_path / "worker.log"
    worker = start_worker(env, log)
    try:
        wait_for(lambda: counts().get("processed", 0) >= 10, 120, worker, log)
        os.killpg(worker.pid, signal.SIGKILL)  # the worker and the job it was running
        worker.wait(timeout=10)
        left = counts().get("pending", 0)
        assert left > 0, "the burst was over before the kill"
        worker = start_worker(env, log)
        wait_for(lambda: counts().get("pending", 0) == 0, 180, worker, log)
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(timeout=30)
        queue.empty()
    failures = list(db.session.scalars(db.select(WebhookEvent.last_error).where(
        WebhookEvent.status == "failed")))
    assert set(counts()) <= {"processed", "ignored"}, failures[:3]
    db.session.expire_all()
    assert snapshot() == expected
