"""Background work: webhook events run on a thread of each process by default, on RQ workers
when Redis is set, or inline in the receiving request."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache

from flask import current_app
from redis import Redis
from rq import Queue
from rq.job import Job

from portal.extensions import db
from portal.models import WebhookEvent
from portal.services import metrics
from portal.services.event_processor import event_processor
from portal.services.logs import current_request_id
from portal.services.webhooks import process_event

EVENT_QUEUE = "stripe-events"
# Named, not imported: the worker module builds apps, and services never do.
RUN_EVENT_JOB = "portal.worker.run_event"
USAGE_QUEUE = "usage-reports"
RUN_USAGE_REPORT_JOB = "portal.worker.run_usage_report"
# Seconds between usage reports when REDIS_URL is set (USAGE_REPORT_INTERVAL overrides).
USAGE_REPORT_INTERVAL = 300


def processing_mode(config) -> str:
    """Return how stored events are processed: "rq", "thread" or "inline"."""
    return config.get("WEBHOOK_PROCESSING") or ("rq" if config.get("REDIS_URL") else "thread")


def uses_rq(config) -> bool:
    """Return True when events go to RQ workers rather than being processed in this process."""
    return processing_mode(config) == "rq"


@lru_cache(maxsize=8)
def redis_connection(url: str) -> Redis:
    """Return one client per Redis URL for this process: its pool keeps connections open
    between enqueues (and redis-py starts a new pool in a forked child)."""
    return Redis.from_url(url)


def event_queue(config) -> Queue:
    """Return the RQ queue for Stripe events."""
    return Queue(EVENT_QUEUE, connection=redis_connection(config["REDIS_URL"]))


def enqueue_event(event_id: int) -> str:
    """Hand a stored event to an RQ worker or this process's thread, or process it now."""
    mode = processing_mode(current_app.config)
    if mode == "thread":
        app = current_app._get_current_object()
        event_processor(app, process_measured).submit(event_id, current_request_id())
        return "queued"
    if mode == "rq":
        # The job id makes a second enqueue of the same event a no-op while it is queued.
        event_queue(current_app.config).enqueue(
            RUN_EVENT_JOB, event_id, job_id=f"stripe-event-{event_id}", retry=None,
            # The request that received the event, so the worker's log lines name it too.
            meta={"request_id": current_request_id()},
        )
        return "queued"
    return process_measured(event_id)


def usage_queue(config) -> Queue:
    """Return the RQ queue for scheduled usage reports."""
    return Queue(USAGE_QUEUE, connection=redis_connection(config["REDIS_URL"]))


def schedule_usage_report(config, now: float) -> str | None:
    """Schedule the next usage report at the next multiple of the interval; return its job id.

    RQ has no cron: each report job schedules its successor first (enqueue_in, run by a worker
    started with its scheduler). The job id names the time slot, so any number of workers and
    restarts keep a single chain; None when that slot is already scheduled.
    """
    interval = int(config.get("USAGE_REPORT_INTERVAL") or USAGE_REPORT_INTERVAL)
    slot = int(now // interval) + 1
    job_id = f"usage-report-{slot}"
    queue = usage_queue(config)
    if Job.exists(job_id, connection=queue.connection):
        return None
    queue.enqueue_in(timedelta(seconds=max(0.0, slot * interval - now)), RUN_USAGE_REPORT_JOB,
                     job_id=job_id, retry=None)
    return job_id


def process_measured(event_id: int) -> str:
    """Process a stored event and record its outcome and lag (received to processed)."""
    status = process_event(event_id)
    row = db.session.execute(db.select(WebhookEvent.type, WebhookEvent.received_at).where(
        WebhookEvent.id == event_id)).first()
    db.session.rollback()
    if row is not None and status in ("processed", "ignored", "failed"):
        received = row.received_at
        lag = (datetime.now(UTC) - received).total_seconds() if received else None
        metrics.webhook_outcome(row.type, status, lag)
    return status


def requeue_pending_events(queue: Queue) -> int:
    """Queue again every stored event not processed yet; return how many.

    The inbox, not Redis, is the record of what is left to do: a worker killed mid-job (or
    an intake that stored an event but died before queueing it) leaves the event pending,
    and it runs once a worker starts. An event queued twice is applied once, since
    processing locks its row and skips a processed one.
    """
    event_ids = list(db.session.scalars(
        db.select(WebhookEvent.id).where(WebhookEvent.status == "pending")
        .order_by(WebhookEvent.stripe_created, WebhookEvent.id)))
    db.session.rollback()
    for event_id in event_ids:
        queue.enqueue(RUN_EVENT_JOB, event_id, job_id=f"stripe-event-{event_id}", retry=None)
    return len(event_ids)
