"""Background work: webhook events run inline by default, on RQ workers when Redis is set."""
from __future__ import annotations

from datetime import UTC, datetime

from flask import current_app
from redis import Redis
from rq import Queue

from portal.extensions import db
from portal.models import WebhookEvent
from portal.services import metrics
from portal.services.logs import current_request_id
from portal.services.webhooks import process_event

EVENT_QUEUE = "stripe-events"
# Named, not imported: the worker module builds apps, and services never do.
RUN_EVENT_JOB = "portal.worker.run_event"


def uses_rq(config) -> bool:
    """Return True when events go to RQ workers rather than being processed inline."""
    mode = config.get("WEBHOOK_PROCESSING") or ("rq" if config.get("REDIS_URL") else "inline")
    return mode == "rq"


def event_queue(config) -> Queue:
    """Return the RQ queue for Stripe events."""
    return Queue(EVENT_QUEUE, connection=Redis.from_url(config["REDIS_URL"]))


def enqueue_event(event_id: int) -> str:
    """Process a stored event now, or queue it for a worker; return its status."""
    if uses_rq(current_app.config):
        # The job id makes a second enqueue of the same event a no-op while it is queued.
        event_queue(current_app.config).enqueue(
            RUN_EVENT_JOB, event_id, job_id=f"stripe-event-{event_id}", retry=None,
            # The request that received the event, so the worker's log lines name it too.
            meta={"request_id": current_request_id()},
        )
        return "queued"
    return process_measured(event_id)


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
