"""Reporting usage to Stripe meters: one event per closed hour with an identifier named after it,
corrections for late events, retries after a real failure, and reconciliation with Stripe's
meter event summaries (the embedded sandbox behind the official SDK)."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from portal.extensions import db
from portal.models import UsageReport
from portal.services.catalog_sync import sync_catalog
from portal.services.stripe_client import build_client
from portal.services.usage_reconcile import reconcile_usage
from portal.services.usage_reporting import report_usage
from tests.helpers import free_port
from tests.usage_billing_support import HOUR, advance, now, on_clock, subscribe
from tests.usage_support import event, new_key, post_usage


@pytest.fixture
def subscribed(app, stripe_api, make_user, deliver_webhooks):
    """Return (user, clock, key, t0): Starter with metered prices since 3 hours ago, on a clock."""
    sync_catalog()
    user = make_user()
    t0 = now()
    clock, customer = on_clock(stripe_api, user, t0 - 3 * HOUR)
    subscribe(stripe_api, customer.id, "starter_month")
    advance(stripe_api, clock, t0, deliver_webhooks)
    return user, clock, new_key(user.account), t0


def at(timestamp: int) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)


def hours_before(t0: int) -> tuple[int, int, int]:
    """Return the starts of the hour two hours before t0's, the one before, and t0's own."""
    current = t0 - t0 % HOUR
    return current - 2 * HOUR, current - HOUR, current


def ingest(client, key, *events) -> None:
    body = post_usage(client, key, {"events": list(events)}).get_json()
    assert body["accepted"] == len(events), body


def stripe_total(stripe_api, event_name: str, customer_id: str, start: int, end: int):
    meter = next(m for m in stripe_api.v1.billing.meters.list().data
                 if m.event_name == event_name)
    start, end = start - start % HOUR, end - end % HOUR + HOUR
    summaries = stripe_api.v1.billing.meters.event_summaries.list(meter.id, params={
        "customer": customer_id, "start_time": start, "end_time": end})
    return [s.aggregated_value for s in summaries.data]


def reports(account_id: int) -> list[tuple[str, int, str]]:
    return [(r.identifier, r.value, r.status) for r in db.session.scalars(
        db.select(UsageReport).where(UsageReport.account_id == account_id)
        .order_by(UsageReport.id))]


def test_report_is_per_window_idempotent_and_reconciles(app, client, stripe_api, subscribed,
                                                        deliver_webhooks):
    user, clock, key, t0 = subscribed
    customer_id = user.account.stripe_customer_id
    hour_1, hour_2, current = hours_before(t0)
    ingest(client, key,
           event("c1", 1200, at=at(hour_1 + 60)), event("c2", 300, at=at(hour_1 + 600)),
           event("c3", 40, at=at(hour_2 + 60)),
           event("s1", 7, meter="storage_gb", at=at(hour_1 + 60)),
           event("s2", 5, meter="storage_gb", at=at(hour_1 + 300)),
           # In the current hour: not closed, not reported yet.
           event("c4", 9, at=at(current)))
    run = report_usage()
    assert (run.sent, run.failed, run.corrections) == (3, 0, 0)
    sent = reports(user.account_id)
    assert (f"usage-{user.account_id}-api_calls-{hour_1}", 1500, "reported") in sent
    assert (f"usage-{user.account_id}-storage_gb-{hour_1}", 5, "reported") in sent
    assert stripe_total(stripe_api, "api_call", customer_id, t0 - 3 * HOUR, t0 - HOUR) == [1540]
    # Re-running reports nothing new.
    assert report_usage().sent == 0
    assert stripe_total(stripe_api, "api_call", customer_id, t0 - 3 * HOUR, t0 - HOUR) == [1540]

    # The current hour's event is not reported yet: reconciliation names that difference.
    runner = app.test_cli_runner()
    result = runner.invoke(args=["billing", "reconcile-usage"])
    assert result.exit_code == 1
    assert "api_calls" in result.output and "portal 1549, Stripe 1540, difference +9" \
        in result.output
    assert [d.meter for d in reconcile_usage()] == ["api_calls"]

    # An hour later (for the customer's clock too) it is closed: reported, all reconciles.
    advance(stripe_api, clock, t0 + HOUR, deliver_webhooks)
    later = report_usage(now=datetime.now(UTC) + timedelta(hours=1))
    assert later.sent == 1
    result = runner.invoke(args=["billing", "reconcile-usage"])
    assert result.exit_code == 0, result.output
    assert "No differences." in result.output


def test_late_events_make_correcting_events(app, client, stripe_api, subscribed):
    user, _clock, key, t0 = subscribed
    customer_id = user.account.stripe_customer_id
    hour_1, _hour_2, _current = hours_before(t0)
    ingest(client, key, event("c1", 100, at=at(hour_1 + 60)),
           event("s1", 7, meter="storage_gb", at=at(hour_1 + 60)))
    assert report_usage().sent == 2
    # Late events for the same, already reported hour.
    ingest(client, key, event("c-late", 25, at=at(hour_1 + 120)),
           event("s-late", 9, meter="storage_gb", at=at(hour_1 + 600)))
    run = report_usage()
    assert (run.sent, run.corrections) == (2, 2)
    sent = reports(user.account_id)
    # Summed: the difference, under its own identifier; last: the new value.
    assert (f"usage-{user.account_id}-api_calls-{hour_1}-c1", 25, "reported") in sent
    assert (f"usage-{user.account_id}-storage_gb-{hour_1}-c1", 9, "reported") in sent
    assert stripe_total(stripe_api, "api_call", customer_id, t0 - 3 * HOUR, t0 - HOUR) == [125]
    assert stripe_total(stripe_api, "storage_gb", customer_id, t0 - 3 * HOUR, t0 - HOUR) == [9]
    assert reconcile_usage() == []


def test_a_failed_report_is_retried_with_the_same_identifier(app, client, stripe_api, subscribed):
    user, _clock, key, t0 = subscribed
    customer_id = user.account.stripe_customer_id
    hour_1, hour_2, _current = hours_before(t0)
    ingest(client, key, event("c1", 70, at=at(hour_1 + 60)), event("c2", 30, at=at(hour_2 + 60)))
    # Stripe unreachable: a closed port.
    unreachable = build_client({"STRIPE_SECRET_KEY": "sk_test_unreachable",
                                "STRIPE_API_BASE": f"http://127.0.0.1:{free_port()}"})
    failed = report_usage(client=unreachable)
    assert (failed.sent, failed.failed) == (0, 2)
    pending = db.session.scalars(db.select(UsageReport).order_by(UsageReport.id)).all()
    assert [(r.status, r.attempts) for r in pending] == [("pending", 1), ("pending", 1)]
    assert all(r.last_error for r in pending)
    assert stripe_total(stripe_api, "api_call", customer_id, t0 - 3 * HOUR, t0 - HOUR) == [0]
    # The first one did reach Stripe after all (its answer was lost on the way back).
    first = pending[0]
    stripe_api.v1.billing.meter_events.create(params={
        "event_name": "api_call", "identifier": first.identifier,
        "timestamp": int(first.event_timestamp.timestamp()),
        "payload": {"stripe_customer_id": customer_id, "value": str(first.value)}})

    result = app.test_cli_runner().invoke(args=["billing", "report-usage"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("sent 2 meter event(s)")
    db.session.expire_all()
    assert [(r.identifier, r.status, r.attempts) for r in db.session.scalars(
        db.select(UsageReport).order_by(UsageReport.id))] == [
        (pending[0].identifier, "reported", 2), (pending[1].identifier, "reported", 2)]
    # Sent once each, never twice.
    assert stripe_total(stripe_api, "api_call", customer_id, t0 - 3 * HOUR, t0 - HOUR) == [100]
    assert reconcile_usage() == []


def test_reports_run_on_rq_and_schedule_the_next_one(app, monkeypatch, database_url):
    import os
    import time

    from rq import SimpleWorker
    from rq.job import Job
    from rq.registry import ScheduledJobRegistry

    from portal.services.jobs import schedule_usage_report, usage_queue
    from portal.worker import close_worker_apps
    from tests.helpers import skip_or_fail

    url = os.environ.get("TEST_REDIS_URL")
    if not url:
        skip_or_fail("set TEST_REDIS_URL=redis://127.0.0.1:6379/5 to test scheduled usage "
                     "reports on RQ", "REQUIRE_REDIS")
    # The worker builds its own app from the environment, as a deployed worker would.
    for name, value in (("DATABASE_URL", database_url), ("REDIS_URL", url),
                        ("USAGE_REPORT_INTERVAL", "1"), ("PORTAL_ENV", "development")):
        monkeypatch.setenv(name, value)
    app.config.update(REDIS_URL=url, USAGE_REPORT_INTERVAL=1)
    queue = usage_queue(app.config)
    queue.connection.flushdb()
    started = time.time()
    first = schedule_usage_report(app.config, started)
    # One chain only: another worker starting in the same slot schedules nothing.
    assert first is not None and schedule_usage_report(app.config, started) is None
    time.sleep(1.2)
    try:
        SimpleWorker([queue], connection=queue.connection).work(burst=True, with_scheduler=True)
    finally:
        close_worker_apps()
    job = Job.fetch(first, connection=queue.connection)
    assert job.get_status() == "finished", job.latest_result()
    assert job.return_value().startswith("sent 0")
    successors = [job_id for job_id in ScheduledJobRegistry(queue=queue).get_job_ids()
                  if job_id != first]
    assert len(successors) == 1
    assert int(successors[0].rsplit("-", 1)[1]) > int(first.rsplit("-", 1)[1])
    queue.connection.flushdb()
    queue.connection.close()


def test_concurrent_report_runs_send_each_window_once(app, client, stripe_api, subscribed):
    import threading

    from tests.helpers import skip_or_fail

    if db.engine.dialect.name != "postgresql":
        skip_or_fail("set TEST_DATABASE_URL to a PostgreSQL database for the concurrency test",
                     "REQUIRE_POSTGRES")
    user, _clock, key, t0 = subscribed
    ingest(client, key, *(event(f"c{n}", n + 1, at=at(t0 - 170 * 60 + n * 60))
                          for n in range(100)))
    barrier = threading.Barrier(4)
    failures: list = []

    def run() -> None:
        with app.app_context():
            barrier.wait()
            failures.append(report_usage().failed)
            db.session.remove()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == [0, 0, 0, 0]
    db.session.expire_all()
    rows = db.session.scalars(db.select(UsageReport)).all()
    assert all(row.status == "reported" and row.sequence == 0 for row in rows)
    assert sum(row.value for row in rows) == sum(range(1, 101))
    assert stripe_total(stripe_api, "api_call", user.account.stripe_customer_id,
                        t0 - 3 * HOUR, t0 - HOUR) == [sum(range(1, 101))]
    assert reconcile_usage() == []


@pytest.mark.app_settings(SANDBOX_FAULT_INJECTION=True, STRIPE_READ_TIMEOUT=0.5,
                          STRIPE_MAX_RETRIES=2)
@pytest.mark.parametrize("fault", ("api_error", "rate_limit", "latency", "hang", "drop",
                                   "lose_response"))
def test_reports_under_each_stripe_fault_reach_stripe_once(app, client, stripe_api,
                                                           subscribed, fault):
    # docs.stripe.com/error-handling (500s, 429s, network errors are retried) and
    # docs.stripe.com/billing/subscriptions/usage-based/recording-usage-api (a meter event's
    # identifier is unique: a resend after a lost answer is refused, not counted twice).
    user, _clock, key, t0 = subscribed
    customer_id = user.account.stripe_customer_id
    hour_1, hour_2, _current = hours_before(t0)
    ingest(client, key, event("c1", 70, at=at(hour_1 + 60)), event("c2", 30, at=at(hour_2 + 60)))
    # Three strikes per report outlast the SDK's two retries (six requests for two reports).
    stripe_api.raw_request("post", "/v1/sandbox/faults", method="POST",
                           path="/v1/billing/meter_events", kind=fault, count=6,
                           latency_ms=100)
    struck = report_usage()
    if fault == "latency":
        assert (struck.sent, struck.failed) == (2, 0)
    else:
        assert (struck.sent, struck.failed) == (0, 2)
        assert {r.status for r in db.session.scalars(db.select(UsageReport))} == {"pending"}
    stripe_api.raw_request("delete", "/v1/sandbox/faults")
    again = report_usage()
    assert again.failed == 0 and struck.sent + again.sent == 2
    db.session.expire_all()
    assert {r.status for r in db.session.scalars(db.select(UsageReport))} == {"reported"}
    # One effect at Stripe whatever the fault: 70 + 30, never a report counted twice.
    assert stripe_total(stripe_api, "api_call", customer_id, t0 - 3 * HOUR, t0 - HOUR) == [100]
    assert reconcile_usage() == []
