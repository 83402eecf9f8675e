"""Webhook delivery from the outbox: sign, POST, record the attempt, retry with backoff.

Signing follows Stripe: header ``Stripe-Signature: t=<unix>,v1=<hex>`` where the hex is
HMAC-SHA256 keyed with the endpoint secret (the whole ``whsec_...`` string) over
``f"{t}.{payload}"``.

Retry schedule (Stripe retries for up to three days in live mode with exponential
backoff): after failed attempt n the next try waits ``RETRY_BASE * 3**(n-1)`` seconds,
capped at ``RETRY_CAP``: 1 min, 3 min, 9 min, 27 min, 81 min, 4 h 3 min, then every 6 h.
A delivery still failing once ``GIVE_UP_AFTER`` (3 days) has passed since the event is
marked ``failed``.

Claiming is done in a short write transaction that pushes ``next_attempt_at`` forward by
``LEASE`` seconds, so several processes running ``deliver_due`` never post the same
attempt twice, and the HTTP call happens outside any database lock.
"""

from __future__ import annotations

import hashlib
import hmac
import sqlite3
import threading
import urllib.error
import urllib.request
from collections.abc import Callable

from flask import Flask

from . import clock
from .store import connect, transaction

RETRY_BASE = 60
RETRY_CAP = 6 * 3600
GIVE_UP_AFTER = 3 * 24 * 3600
LEASE = 30
TIMEOUT = 5

Deliver = Callable[[str, dict, bytes], int]


def sign(payload: str, secret: str, timestamp: int) -> str:
    """Return the ``Stripe-Signature`` header value for a payload."""
    signed = f"{timestamp}.{payload}".encode()
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def retry_delay(attempts: int) -> int:
    """Return seconds to wait after the given number of failed attempts."""
    return min(RETRY_BASE * 3 ** max(attempts - 1, 0), RETRY_CAP)


def post_with_urllib(url: str, headers: dict, body: bytes) -> int:
    """POST a webhook over HTTP and return the status code (non-2xx included)."""
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT) as resp:  # noqa: S310 - http(s) endpoint URLs only
            return resp.status
    except urllib.error.HTTPError as exc:
        exc.close()
        return exc.code


def _any_due(db: str, now: int) -> bool:
    """Check for due deliveries without taking the write lock (most passes find none)."""
    conn = connect(db)
    try:
        row = conn.execute(
            "SELECT 1 FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= ?"
            " LIMIT 1",
            (now,),
        ).fetchone()
        return row is not None
    finally:
        conn.close()


def _claim(db: str, now: int, limit: int) -> list[dict]:
    """Lease due deliveries so no other worker picks them up meanwhile."""
    if not _any_due(db, now):
        return []
    with transaction(db) as store:
        rows = store.conn.execute(
            "SELECT id, event_id, url, secret, payload, attempts, created FROM webhook_deliveries"
            " WHERE status = 'pending' AND next_attempt_at <= ? ORDER BY seq LIMIT ?",
            (now, limit),
        ).fetchall()
        for row in rows:
            store.conn.execute(
                "UPDATE webhook_deliveries SET next_attempt_at = ? WHERE id = ?",
                (now + LEASE, row["id"]),
            )
        return [dict(r) for r in rows]


def _record(db: str, delivery: dict, now: int, status: int | None, error: str | None) -> bool:
    """Store one attempt's outcome and schedule the next try; return True when delivered."""
    ok = status is not None and 200 <= status < 300
    attempts = delivery["attempts"] + 1
    if ok:
        state, next_at = "delivered", None
    elif now - delivery["created"] >= GIVE_UP_AFTER:
        state, next_at = "failed", None
    else:
        state, next_at = "pending", now + retry_delay(attempts)
    with transaction(db) as store:
        store.conn.execute(
            "UPDATE webhook_deliveries SET status = ?, attempts = ?, next_attempt_at = ?,"
            " last_status = ?, last_error = ? WHERE id = ?",
            (state, attempts, next_at, status, error, delivery["id"]),
        )
        store.conn.execute(
            "INSERT INTO delivery_attempts (delivery_id, attempted_at, status, error)"
            " VALUES (?, ?, ?, ?)",
            (delivery["id"], now, status, error),
        )
    return ok


def deliver_due(app: Flask, now: int | None = None, limit: int = 100) -> int:
    """Attempt every webhook delivery due at ``now``; return how many succeeded."""
    db = app.config["SANDBOX_DB"]
    deliver: Deliver = app.config.get("SANDBOX_DELIVER") or post_with_urllib
    moment = clock.wall_time() if now is None else int(now)
    delivered = 0
    for delivery in _claim(db, moment, limit):
        timestamp = clock.wall_time() if now is None else moment
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            "Stripe-Signature": sign(delivery["payload"], delivery["secret"], timestamp),
        }
        status: int | None = None
        error: str | None = None
        try:
            status = int(deliver(delivery["url"], headers, delivery["payload"].encode()))
            if not 200 <= status < 300:
                error = f"HTTP {status}"
        except Exception as exc:  # noqa: BLE001 - any failure to reach the endpoint is a failed attempt
            error = f"{type(exc).__name__}: {exc}"
        delivered += _record(db, delivery, moment, status, error)
    return delivered


def after_commit(app: Flask) -> None:
    """Deliver due webhooks right away when the app runs in ``inline`` delivery mode."""
    if app.config.get("SANDBOX_DELIVERY") != "inline":
        return
    try:
        deliver_due(app)
    except Exception:  # noqa: BLE001 - the API call already committed; delivery retries later
        app.logger.exception("inline webhook delivery failed")


def deliveries(
    conn: sqlite3.Connection, event_id: str | None = None, endpoint_id: str | None = None
) -> list[dict]:
    """Return deliveries (newest first) with their attempts, for debugging."""
    sql = (
        "SELECT id, event_id, endpoint_id, url, status, attempts, created, next_attempt_at,"
        " last_status, last_error FROM webhook_deliveries WHERE 1=1"
    )
    args: list[str] = []
    if event_id:
        sql += " AND event_id = ?"
        args.append(event_id)
    if endpoint_id:
        sql += " AND endpoint_id = ?"
        args.append(endpoint_id)
    out = []
    for row in conn.execute(sql + " ORDER BY seq DESC LIMIT 100", args).fetchall():
        item = dict(row)
        item["object"] = "sandbox.webhook_delivery"
        item["attempt_log"] = [
            dict(a)
            for a in conn.execute(
                "SELECT attempted_at, status, error FROM delivery_attempts WHERE delivery_id = ?"
                " ORDER BY seq",
                (row["id"],),
            )
        ]
        out.append(item)
    return out


class DeliveryThread(threading.Thread):
    """Background loop that delivers due webhooks every ``interval`` seconds until stopped."""

    def __init__(self, app: Flask, interval: float = 1.0,
                 before: Callable[[Flask], object] | None = None) -> None:
        super().__init__(name="sandbox-webhooks", daemon=True)
        self.app = app
        self.interval = interval
        # Work to run first on every pass (the billing engine), so time moves without requests.
        self.before = before
        self.stopped = threading.Event()

    def run(self) -> None:
        """Run due work and deliver due rows until ``stop`` is called."""
        while not self.stopped.wait(self.interval):
            try:
                if self.before is not None:
                    self.before(self.app)
                deliver_due(self.app)
            except Exception:  # noqa: BLE001 - the loop must survive a locked or missing db
                self.app.logger.exception("webhook delivery loop failed")

    def stop(self) -> None:
        """Ask the loop to exit after its current pass."""
        self.stopped.set()
