"""The RQ entry point: jobs run here, in an app built once per worker process.

The worker is RQ's SimpleWorker: every job runs in the worker process itself (no fork per
job), so the app, its connection pool and its imports are built once and serve every job.
A job still ends within RQ's job timeout (SIGALRM in the worker's main thread), and each
runs in an app context of its own, whose end removes the database session (Flask-SQLAlchemy),
so one that raised cannot taint the next.
"""
from __future__ import annotations

import os
import time

from flask import Flask
from rq import Queue, SimpleWorker, get_current_job

from portal import create_app
from portal.extensions import db
from portal.services.jobs import (
    EVENT_QUEUE,
    process_measured,
    requeue_pending_events,
    schedule_usage_report,
)
from portal.services.logs import reset_request_id, set_request_id
from portal.services.mail import deliver_queued_mail
from portal.services.usage_reporting import report_usage

# One app per worker process and configuration, built on the first job.
_worker_apps: dict[tuple[str | None, str | None], Flask] = {}


def worker_app() -> Flask:
    """Return this process's app for the configuration in the environment, built once."""
    key = (os.environ.get("INSTANCE_PATH"), os.environ.get("DATABASE_URL"))
    app = _worker_apps.get(key)
    if app is None:
        app = _worker_apps[key] = create_app()
    return app


def run_event(event_id: int) -> str:
    """Process one stored Stripe event inside an RQ worker, under the receiving request's id."""
    job = get_current_job()
    token = set_request_id((job.meta or {}).get("request_id") if job is not None else None)
    try:
        with worker_app().app_context():
            return process_measured(event_id)
    finally:
        reset_request_id(token)


def run_mail(ids: list[int]) -> int:
    """Send queued mail rows inside an RQ worker."""
    with worker_app().app_context():
        return deliver_queued_mail(ids)


def run_usage_report() -> str:
    """Report usage to Stripe inside an RQ worker, after scheduling the next report."""
    app = worker_app()
    with app.app_context():
        schedule_usage_report(app.config, time.time())
        run = report_usage()
        return f"sent {run.sent}, corrections {run.corrections}, failed {run.failed}"


def close_worker_apps() -> None:
    """Release the database connections of the apps this worker process built."""
    while _worker_apps:
        _key, app = _worker_apps.popitem()
        with app.app_context():
            db.engine.dispose()


def work(queues: list[Queue], burst: bool = False) -> None:
    """Run an RQ worker on `queues` until stopped (or until they are empty, with `burst`).

    First the webhook events left pending (by a worker that died mid-job, say) are queued
    again, so none is lost.
    """
    try:
        # Built here, once: SimpleWorker runs every job in this process with this app. The
        # pool is emptied before RQ forks its scheduler process, which must share no connection.
        with worker_app().app_context():
            for queue in queues:
                if queue.name == EVENT_QUEUE:
                    requeue_pending_events(queue)
            db.session.remove()
            db.engine.dispose()
        # The scheduler moves due `enqueue_in` jobs (the usage report chain) onto their queue.
        SimpleWorker(queues, connection=queues[0].connection).work(
            burst=burst, with_scheduler=True)
    finally:
        close_worker_apps()
