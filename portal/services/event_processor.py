"""The "thread" processing mode: one background thread per process applies stored events.

The intake stores an event and hands its id over, so the request answers at once. The inbox,
not the in-memory queue, is the record of what is left to do: when idle the thread sweeps
events still pending after WEBHOOK_SWEEP_AFTER_S seconds (stored by a process that died
before processing them, say) and applies them too. Applying twice is harmless: processing
locks the event's row and skips a processed one.
"""
from __future__ import annotations

import logging
import os
import queue
import threading
import time
from datetime import timedelta

from flask import Flask

from portal.extensions import db
from portal.models import WebhookEvent
from portal.models.types import utcnow
from portal.services.logs import reset_request_id, set_request_id

EXTENSION_KEY = "event_processor"
log = logging.getLogger(__name__)
_start_lock = threading.Lock()


class EventProcessor:
    """Daemon threads applying the events handed to them; the first also sweeps forgotten ones.

    WEBHOOK_THREADS threads (2 by default) share the queue, so one waiting on Stripe does not
    hold up the others; events about one object are serialised by the locks processing takes.
    """

    def __init__(self, app: Flask, process) -> None:
        """Hold the app and the function applying one event (`process(event_id) -> status`)."""
        self.app = app
        self.process = process
        self.pid = os.getpid()
        self.event_ids: queue.Queue[tuple[int, str | None] | None] = queue.Queue()
        count = max(1, int(app.config.get("WEBHOOK_THREADS") or 1))
        self.threads = [threading.Thread(target=self.run, args=(number == 0,),
                                         name=f"webhook-events-{number}", daemon=True)
                        for number in range(count)]

    def start(self) -> None:
        """Start every thread."""
        for thread in self.threads:
            thread.start()

    def submit(self, event_id: int, request_id: str | None) -> None:
        """Hand over a stored event, with the id of the request that received it."""
        self.event_ids.put((event_id, request_id))

    def alive(self) -> bool:
        """Return True when this process's threads are running (a fork inherits none)."""
        return self.pid == os.getpid() and all(thread.is_alive() for thread in self.threads)

    def stop(self, timeout: float = 30.0) -> None:
        """Let the threads finish the events handed over so far, then end them."""
        if self.alive():
            for _thread in self.threads:
                self.event_ids.put(None)
            for thread in self.threads:
                thread.join(timeout)

    def run(self, sweeps: bool = True) -> None:
        """Apply handed-over events; the sweeping thread also sweeps the inbox at start and
        whenever idle long enough."""
        interval = float(self.app.config["WEBHOOK_SWEEP_INTERVAL_S"])
        if sweeps:
            self.sweep()
        last_sweep = time.monotonic()
        while True:
            wait = max(0.0, last_sweep + interval - time.monotonic()) if sweeps else None
            try:
                item = self.event_ids.get(timeout=wait)
            except queue.Empty:
                item = ()
            if item is None:
                return
            if item:
                self.apply(*item)
            if sweeps and time.monotonic() - last_sweep >= interval:
                self.sweep()
                last_sweep = time.monotonic()

    def apply(self, event_id: int, request_id: str | None = None) -> None:
        """Apply one event in an app context of its own; no failure stops the thread."""
        token = set_request_id(request_id)
        try:
            with self.app.app_context():
                try:
                    self.process(event_id)
                finally:
                    db.session.remove()
        except Exception:  # noqa: BLE001 - the event stays pending for the next sweep
            log.exception("webhook event %s could not be processed", event_id)
        finally:
            reset_request_id(token)

    def sweep(self) -> int:
        """Apply the events left pending longer than WEBHOOK_SWEEP_AFTER_S; return how many."""
        try:
            with self.app.app_context():
                try:
                    event_ids = forgotten_events(float(self.app.config["WEBHOOK_SWEEP_AFTER_S"]))
                finally:
                    db.session.remove()
        except Exception:  # noqa: BLE001 - the database may be back for the next sweep
            log.exception("webhook event sweep failed")
            return 0
        for event_id in event_ids:
            self.apply(event_id)
        return len(event_ids)


def forgotten_events(older_than_s: float) -> list[int]:
    """Return the ids of events still pending that were received over `older_than_s` ago."""
    cutoff = utcnow() - timedelta(seconds=older_than_s)
    return list(db.session.scalars(
        db.select(WebhookEvent.id)
        .where(WebhookEvent.status == "pending", WebhookEvent.received_at <= cutoff)
        .order_by(WebhookEvent.stripe_created, WebhookEvent.id)))


def event_processor(app: Flask, process) -> EventProcessor:
    """Return this process's running processor for `app`, starting it on first use.

    Started lazily, so a server that forks its workers after loading the app (gunicorn's
    preload_app) gets one thread per worker rather than one dead copy.
    """
    processor = app.extensions.get(EXTENSION_KEY)
    if processor is not None and processor.alive():
        return processor
    with _start_lock:
        processor = app.extensions.get(EXTENSION_KEY)
        if processor is None or not processor.alive():
            processor = app.extensions[EXTENSION_KEY] = EventProcessor(app, process)
            processor.start()
    return processor


def stop_event_processor(app: Flask, timeout: float = 30.0) -> None:
    """Stop `app`'s processor in this process, when one runs (tests, orderly shutdown)."""
    processor = app.extensions.pop(EXTENSION_KEY, None)
    if processor is not None:
        processor.stop(timeout)
