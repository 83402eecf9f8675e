"""Operators' view of the portal: request ids, JSON logs, request metrics, /metrics, deadlines.

Each web request gets a request id (the caller's X-Request-Id when well formed), answered in
X-Request-Id and carried into the RQ jobs it queues, and a deadline for all its Stripe calls
(STRIPE_REQUEST_DEADLINE) so no request outlives the server's worker timeout.
"""
from __future__ import annotations

import hmac
import ipaddress
import time

from flask import Flask, Response, abort, g, request

from portal.extensions import csrf, limiter
from portal.services import metrics
from portal.services.health import backlog_counts, queue_depth
from portal.services.logs import (
    configure_logging,
    new_request_id,
    reset_request_id,
    set_request_id,
)
from portal.services.stripe_client import end_deadline, start_deadline


def register_observability(app: Flask) -> None:
    """Add request ids, the Stripe deadline, request metrics, JSON logs and /metrics."""
    if not app.config.get("TESTING"):
        configure_logging(app.config.get("LOG_FORMAT") or "json")
    deadline = app.config.get("STRIPE_REQUEST_DEADLINE")

    @app.before_request
    def begin_request():
        # A stack: the embedded sandbox may post a webhook into this app while one of its
        # requests waits (inline delivery), in the same app context.
        request_id = new_request_id(request.headers.get("X-Request-Id"))
        g.setdefault("observed", []).append({
            "started": time.perf_counter(), "request_id": request_id,
            "id_token": set_request_id(request_id), "deadline_token": start_deadline(deadline)})

    @app.after_request
    def finish_request(response):
        observed = g.get("observed")
        if observed:
            current = observed[-1]
            metrics.http_request_seconds.labels(
                request.endpoint or "unmatched", request.method, str(response.status_code)
            ).observe(time.perf_counter() - current["started"])
            response.headers.setdefault("X-Request-Id", current["request_id"])
        return response

    @app.teardown_request
    def end_request(_error=None):
        observed = g.get("observed")
        if observed:
            current = observed.pop()
            end_deadline(current["deadline_token"])
            reset_request_id(current["id_token"])

    @csrf.exempt
    @limiter.exempt
    def metrics_view():
        """Answer the Prometheus metrics to a holder of METRICS_TOKEN or an allowed address."""
        if not metrics_allowed(app):
            abort(404)
        body, content_type = metrics.exposition(
            metrics.BacklogCollector(backlog_counts(), queue_depth()))
        return Response(body, content_type=content_type, headers={"Cache-Control": "no-store"})

    app.add_url_rule("/metrics", endpoint="metrics", view_func=metrics_view)


def metrics_allowed(app: Flask) -> bool:
    """Return True for a request carrying the metrics token or coming from an allowed address.

    With neither configured, /metrics is closed: it names routes and event volumes.
    """
    token = app.config.get("METRICS_TOKEN")
    header = request.headers.get("Authorization", "")
    if token and header.startswith("Bearer ") and hmac.compare_digest(
            header[7:].strip().encode(), token.encode()):
        return True
    allowed = [part.strip() for part in (app.config.get("METRICS_ALLOWED_IPS") or "").split(",")
               if part.strip()]
    if not allowed or not request.remote_addr:
        return False
    try:
        address = ipaddress.ip_address(request.remote_addr)
        return any(address in ipaddress.ip_network(net, strict=False) for net in allowed)
    except ValueError:
        return False
