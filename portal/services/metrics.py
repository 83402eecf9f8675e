"""Prometheus metrics the portal keeps: requests, webhook events, Stripe calls, queue depth.

With PROMETHEUS_MULTIPROC_DIR set (several gunicorn workers and RQ workers), prometheus_client
writes each process's samples to files in that folder and `exposition()` adds them up;
without it each process reports its own.
"""
from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30)
LAG_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600)

http_request_seconds = Histogram(
    "portal_http_request_duration_seconds", "Time to answer a request, by Flask endpoint.",
    ["endpoint", "method", "status"], buckets=LATENCY_BUCKETS)
webhook_received = Counter(
    "portal_webhook_events_received_total", "Signed Stripe events stored, by type.", ["type"])
webhook_processed = Counter(
    "portal_webhook_events_processed_total",
    "Events done with (applied, or ignored for want of a handler), by type.", ["type"])
webhook_failed = Counter(
    "portal_webhook_events_failed_total", "Event processing attempts that failed, by type.",
    ["type"])
webhook_lag_seconds = Histogram(
    "portal_webhook_lag_seconds", "From an event's receipt to the end of its processing.",
    ["type"], buckets=LAG_BUCKETS)
stripe_request_seconds = Histogram(
    "portal_stripe_request_duration_seconds", "One HTTP attempt to Stripe, by endpoint.",
    ["endpoint"], buckets=LATENCY_BUCKETS)
stripe_errors = Counter(
    "portal_stripe_request_errors_total",
    "Stripe attempts that failed: HTTP status, 'timeout' or 'connection', by endpoint.",
    ["endpoint", "error"])


def stripe_call(endpoint: str, seconds: float, error: str | None) -> None:
    """Record one attempt to Stripe: its latency, and its error when it failed."""
    stripe_request_seconds.labels(endpoint).observe(seconds)
    if error:
        stripe_errors.labels(endpoint, error).inc()


def webhook_outcome(event_type: str, status: str, lag_seconds: float | None) -> None:
    """Record how processing an event ended, and its lag when it was applied."""
    if status == "failed":
        webhook_failed.labels(event_type).inc()
        return
    webhook_processed.labels(event_type).inc()
    if lag_seconds is not None:
        webhook_lag_seconds.labels(event_type).observe(max(0.0, lag_seconds))


class BacklogCollector:
    """Gauges read when scraped: events waiting in the inbox and jobs waiting on RQ."""

    def __init__(self, backlog: dict[str, int], queue_depth: int | None):
        self.backlog = backlog
        self.queue_depth = queue_depth

    def collect(self):
        """Yield the gauges (called by the registry while it renders)."""
        inbox = GaugeMetricFamily("portal_webhook_backlog",
                                  "Stored webhook events by status that are not processed yet.",
                                  labels=["status"])
        for status, count in sorted(self.backlog.items()):
            inbox.add_metric([status], count)
        yield inbox
        if self.queue_depth is not None:
            yield GaugeMetricFamily("portal_queue_depth",
                                    "Jobs waiting on the RQ queues (events and mail).",
                                    value=self.queue_depth)


def exposition(extra) -> tuple[bytes, str]:
    """Return the metrics text of every process (multiprocess mode) or of this one."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        registry.register(extra)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    registry = CollectorRegistry()
    registry.register(extra)
    return generate_latest(REGISTRY) + generate_latest(registry), CONTENT_TYPE_LATEST
