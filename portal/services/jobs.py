"""Background work: webhook events run inline by default, on RQ workers when Redis is set."""
from __future__ import annotations

from flask import current_app
from redis import Redis
from rq import Queue

from portal.extensions import db
from portal.models import WebhookEvent
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
            RUN_EVENT_JOB, event_id, job_id=f"stripe-event-{event_id}", retry=None
        )
        return "queued"
    return process_event(event_id)


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
