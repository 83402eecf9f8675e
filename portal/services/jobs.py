"""Background work: webhook events run inline by default, on RQ workers when Redis is set."""
from __future__ import annotations

import os

from flask import Flask, current_app
from redis import Redis
from rq import Queue

from portal.services.webhooks import process_event

EVENT_QUEUE = "stripe-events"
# One app per worker process and configuration, built on the first job.
_worker_apps: dict[tuple[str | None, str | None], Flask] = {}


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
            run_event, event_id, job_id=f"stripe-event-{event_id}", retry=None
        )
        return "queued"
    return process_event(event_id)


def run_event(event_id: int) -> str:
    """Process one event inside an RQ worker, with an app built once per worker process."""
    key = (os.environ.get("INSTANCE_PATH"), os.environ.get("DATABASE_URL"))
    app = _worker_apps.get(key)
    if app is None:
        from portal import create_app

        app = _worker_apps[key] = create_app()
    with app.app_context():
        return process_event(event_id)


def close_worker_apps() -> None:
    """Release the database connections of the apps this worker process built."""
    from portal.extensions import db

    while _worker_apps:
        _key, app = _worker_apps.popitem()
        with app.app_context():
            db.engine.dispose()
