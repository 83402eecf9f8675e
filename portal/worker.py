"""The RQ entry point: jobs run here, in an app built once per worker process."""
from __future__ import annotations

import os

from flask import Flask
from rq import Queue, Worker

from portal import create_app
from portal.extensions import db
from portal.services.webhooks import process_event

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
    """Process one stored Stripe event inside an RQ worker."""
    with worker_app().app_context():
        return process_event(event_id)


def close_worker_apps() -> None:
    """Release the database connections of the apps this worker process built."""
    while _worker_apps:
        _key, app = _worker_apps.popitem()
        with app.app_context():
            db.engine.dispose()


def work(queue: Queue, burst: bool = False) -> None:
    """Run an RQ worker on `queue` until stopped (or until it is empty, with `burst`)."""
    try:
        Worker([queue], connection=queue.connection).work(burst=burst)
    finally:
        close_worker_apps()
