"""Idempotent requests: a POST with an ``Idempotency-Key`` answers the same way when retried.

Stripe keeps a key for 24 hours. A retry with the same key and the same request (method,
path, parameters) replays the stored response with ``Idempotent-Replayed: true``; the same
key with different parameters is refused. Responses are kept for successes, 4xx answers a
retry would repeat, and 402 card declines, never for 5xx errors (those may be retried).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from . import clock
from .errors import StripeError, idempotency_error
from .store import Store

TTL = 24 * 3600
MAX_KEY_LENGTH = 255


def check_key(key: str | None) -> str | None:
    """Return the key when it is usable, raising Stripe's 400 when it is too long."""
    if key is not None and len(key) > MAX_KEY_LENGTH:
        raise StripeError(f"Idempotency-Key must be at most {MAX_KEY_LENGTH} characters long.")
    return key


def fingerprint(method: str, path: str, params: dict[str, Any]) -> str:
    """Hash what makes two idempotent requests "the same"."""
    blob = json.dumps([method, path, params], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def stored_response(store: Store, key: str, print_: str) -> tuple[int, Any] | None:
    """Return the (status, body) kept for a reused key, None for a new or expired key."""
    row = store.conn.execute(
        "SELECT fingerprint, status, body, created FROM idempotency_keys WHERE key = ?", (key,)
    ).fetchone()
    if row is None or row["created"] < clock.wall_time() - TTL:
        return None
    if row["fingerprint"] != print_:
        raise idempotency_error(key)
    return row["status"], json.loads(row["body"])


def worth_keeping(status: int) -> bool:
    """Tell whether a response is kept for replay (not a 5xx, not a 4xx other than 402)."""
    return status < 400 or status == 402


def keep_response(store: Store, key: str, print_: str, status: int, body: Any) -> None:
    """Store a response under its key, dropping keys older than the retention period."""
    now = clock.wall_time()
    store.conn.execute("DELETE FROM idempotency_keys WHERE created < ?", (now - TTL,))
    store.conn.execute(
        "INSERT OR REPLACE INTO idempotency_keys (key, fingerprint, status, body, created)"
        " VALUES (?, ?, ?, ?, ?)",
        (key, print_, status, json.dumps(body), now),
    )
