"""Fault injection: make chosen API routes fail the ways Stripe and networks fail.

Off unless ``SANDBOX_FAULT_INJECTION`` is set (development and tests only). A fault names an
HTTP method, a path pattern (``fnmatch``: ``/v1/subscriptions/*``) and how many matching
requests it affects; the oldest fault with requests left wins. Faults live in the store
(table ``faults``), so every worker process serving one sandbox file sees the same ones.

Kinds, after what Stripe documents for errors (https://docs.stripe.com/error-handling,
https://docs.stripe.com/error-codes, https://docs.stripe.com/rate-limits):

- ``api_error``: a 500 ``api_error``; nothing is done (no idempotent result is kept, as
  Stripe keeps none for a request that did not start executing).
- ``rate_limit``: a 429 ``rate_limit`` error; nothing is done.
- ``latency``: the request waits ``latency_ms`` and then runs normally.
- ``hang``: the connection is accepted and never answered (for ``hang_s`` seconds, then
  closed); nothing is done.
- ``drop``: the connection is closed before the request is handled; nothing is done.
- ``lose_response``: the request runs and commits, then the connection is closed without
  its answer (a retry with the same idempotency key gets the kept result).

Over a real socket the connection is really held or closed. A client calling the WSGI app in
process has no socket: it gets the header ``Sandbox-Fault: hang`` or ``drop`` instead and is
expected to act as its socket would have (wait out its read timeout, or fail).
"""

from __future__ import annotations

import fnmatch
import json
import socket
import sqlite3
import time
from collections.abc import Callable, Iterable
from typing import Any

from .ids import new_id
from .store import connect

KINDS = ("api_error", "rate_limit", "latency", "hang", "drop", "lose_response")
FAULT_HEADER = "Sandbox-Fault"
SCHEMA = """
CREATE TABLE IF NOT EXISTS faults (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    kind TEXT NOT NULL,
    remaining INTEGER NOT NULL,
    hits INTEGER NOT NULL DEFAULT 0,
    latency_ms INTEGER NOT NULL DEFAULT 0,
    hang_s REAL NOT NULL DEFAULT 30,
    created INTEGER NOT NULL
);
"""
# Paths faults never touch: the sandbox's own tools (how faults are set and cleared).
EXEMPT_PREFIX = "/v1/sandbox/"
# Socket keys WSGI servers put in the environ (werkzeug's dev server, gunicorn).
SOCKET_KEYS = ("werkzeug.socket", "gunicorn.socket")


def ensure_table(conn: sqlite3.Connection) -> None:
    """Create the faults table when this store has none yet."""
    conn.executescript(SCHEMA)


def add_fault(conn: sqlite3.Connection, method: str, path: str, kind: str, count: int,
              latency_ms: int = 0, hang_s: float = 30.0) -> dict:
    """Store one fault and return it."""
    ensure_table(conn)
    fault_id = new_id("fault", 14)
    conn.execute(
        "INSERT INTO faults (id, method, path, kind, remaining, latency_ms, hang_s, created) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (fault_id, method.upper(), path, kind, count, latency_ms, hang_s, int(time.time())))
    return get_faults(conn, fault_id)[0]


def get_faults(conn: sqlite3.Connection, fault_id: str | None = None) -> list[dict]:
    """Return every fault (or the one with `fault_id`), oldest first."""
    ensure_table(conn)
    query = "SELECT * FROM faults" + (" WHERE id = ?" if fault_id else "") + " ORDER BY seq"
    rows = conn.execute(query, (fault_id,) if fault_id else ()).fetchall()
    return [_render(row) for row in rows]


def clear_faults(conn: sqlite3.Connection) -> int:
    """Remove every fault; return how many there were."""
    ensure_table(conn)
    return conn.execute("DELETE FROM faults").rowcount


def _render(row: sqlite3.Row) -> dict:
    return {"id": row["id"], "object": "sandbox.fault", "method": row["method"],
            "path": row["path"], "kind": row["kind"], "remaining": row["remaining"],
            "hits": row["hits"], "latency_ms": row["latency_ms"], "hang_s": row["hang_s"],
            "created": row["created"]}


def take_fault(db_path: str, method: str, path: str) -> dict | None:
    """Return the fault this request meets, counting it used; None when none applies."""
    conn = connect(db_path)
    try:
        ensure_table(conn)
        if conn.execute("SELECT 1 FROM faults WHERE remaining > 0 LIMIT 1").fetchone() is None:
            return None
        conn.execute("BEGIN IMMEDIATE")
        rows = conn.execute(
            "SELECT * FROM faults WHERE remaining > 0 AND method IN (?, '*') ORDER BY seq",
            (method.upper(),)).fetchall()
        for row in rows:
            if fnmatch.fnmatchcase(path, row["path"]):
                conn.execute("UPDATE faults SET remaining = remaining - 1, hits = hits + 1 "
                             "WHERE seq = ?", (row["seq"],))
                conn.execute("COMMIT")
                return _render(row)
        conn.execute("COMMIT")
        return None
    finally:
        conn.close()


def _error_body(kind: str, request_id: str) -> tuple[str, dict]:
    """Return the status line and Stripe's error body for an error fault."""
    if kind == "rate_limit":
        return "429 TOO MANY REQUESTS", {"error": {
            "type": "invalid_request_error", "code": "rate_limit",
            "doc_url": "https://stripe.com/docs/error-codes/rate-limit",
            "message": "Request rate limit exceeded. Learn more about rate limits here "
                       "https://stripe.com/docs/rate-limits.",
            "request_log_url": f"https://dashboard.stripe.com/test/logs/{request_id}"}}
    return "500 INTERNAL SERVER ERROR", {"error": {
        "type": "api_error",
        "message": "An unknown error occurred",
        "request_log_url": f"https://dashboard.stripe.com/test/logs/{request_id}"}}


def _close_socket(environ: dict) -> bool:
    """Close the client's connection under the server; return False when there is none."""
    for key in SOCKET_KEYS:
        sock = environ.get(key)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return True
    return False


class FaultInjector:
    """WSGI middleware applying stored faults to API requests (``/v1/...``)."""

    def __init__(self, wsgi_app: Callable, config: dict[str, Any]):
        self.wsgi_app = wsgi_app
        self.config = config

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if (not self.config.get("SANDBOX_FAULT_INJECTION") or not path.startswith("/v1/")
                or path.startswith(EXEMPT_PREFIX)):
            return self.wsgi_app(environ, start_response)
        fault = take_fault(self.config["SANDBOX_DB"], environ.get("REQUEST_METHOD", "GET"), path)
        if fault is None:
            return self.wsgi_app(environ, start_response)
        kind = fault["kind"]
        if kind == "latency":
            time.sleep(fault["latency_ms"] / 1000)
            return self.wsgi_app(environ, start_response)
        if kind in ("api_error", "rate_limit"):
            request_id = new_id("req", 14)
            status, body = _error_body(kind, request_id)
            start_response(status, [("Content-Type", "application/json"),
                                    ("Request-Id", request_id)])
            return [json.dumps(body).encode()]
        if kind == "lose_response":
            # The effect happens and commits; only the answer is lost on the way back.
            result = self.wsgi_app(environ, lambda *_args, **_kwargs: None)
            for _chunk in result:
                pass
            if hasattr(result, "close"):
                result.close()
        elif kind == "hang":
            if any(key in environ for key in SOCKET_KEYS):
                time.sleep(fault["hang_s"])
        return self._lose_connection(environ, start_response,
                                     "hang" if kind == "hang" else "drop")

    @staticmethod
    def _lose_connection(environ: dict, start_response: Callable, what: str) -> Iterable[bytes]:
        """Close a real connection with no answer, or tell an in-process caller what happened."""
        if _close_socket(environ):
            # The server may still try to write; the client has already seen the close.
            start_response("500 INTERNAL SERVER ERROR", [("Content-Length", "0")])
            return [b""]
        start_response("599 NETWORK FAULT", [(FAULT_HEADER, what), ("Content-Length", "0")])
        return [b""]
