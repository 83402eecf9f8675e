"""SQLite store: objects, events, idempotency keys and the webhook outbox in one file.

Every API request opens a fresh connection and runs inside one ``BEGIN IMMEDIATE``
transaction, so several worker processes sharing the file see one consistent state
and writers queue instead of losing updates.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL,
    customer TEXT,
    test_clock TEXT,
    created INTEGER NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS objects_type ON objects (type, created, seq);
CREATE INDEX IF NOT EXISTS objects_customer ON objects (customer, type);
CREATE INDEX IF NOT EXISTS objects_clock ON objects (test_clock, type);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL,
    created INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_type ON events (type, created);
CREATE TABLE IF NOT EXISTS idempotency_keys (
    key TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    status INTEGER NOT NULL,
    body TEXT NOT NULL,
    created INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS webhook_deliveries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    event_id TEXT NOT NULL,
    endpoint_id TEXT NOT NULL,
    url TEXT NOT NULL,
    secret TEXT NOT NULL,
    payload TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    created INTEGER NOT NULL,
    next_attempt_at INTEGER,
    last_status INTEGER,
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS deliveries_due ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX IF NOT EXISTS deliveries_event ON webhook_deliveries (event_id);
CREATE TABLE IF NOT EXISTS delivery_attempts (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id TEXT NOT NULL,
    attempted_at INTEGER NOT NULL,
    status INTEGER,
    error TEXT
);
"""

TABLES = ("objects", "events", "idempotency_keys", "webhook_deliveries", "delivery_attempts")


def connect(path: str) -> sqlite3.Connection:
    """Open a connection in autocommit mode so transactions are explicit ``BEGIN IMMEDIATE``."""
    conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA busy_timeout = 30000")
    # Checked on every connection so a store file removed while the process runs comes back.
    if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'delivery_attempts'").fetchone():
        return conn
    try:
        # WAL lets readers proceed while one writer holds the lock.
        conn.execute("PRAGMA journal_mode = WAL")
        conn.executescript(SCHEMA)
    except BaseException:
        conn.close()
        raise
    return conn


class Store:
    """Typed access to the sandbox tables over one open connection."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    # -- objects -----------------------------------------------------------------

    def get(
        self, obj_id: str, obj_type: str | None = None, *, include_deleted: bool = False
    ) -> dict | None:
        """Return the stored object with this id (optionally of this type), or None."""
        if not isinstance(obj_id, str) or not obj_id:
            return None
        row = self.conn.execute(
            "SELECT type, deleted, body FROM objects WHERE id = ?", (obj_id,)
        ).fetchone()
        if row is None or (obj_type is not None and row["type"] != obj_type):
            return None
        if row["deleted"] and not include_deleted:
            return None
        return json.loads(row["body"])

    def is_deleted(self, obj_id: str) -> bool:
        """Tell whether an object with this id existed and was deleted."""
        row = self.conn.execute("SELECT deleted FROM objects WHERE id = ?", (obj_id,)).fetchone()
        return bool(row and row["deleted"])

    def insert(
        self, obj: dict, *, customer: str | None = None, test_clock: str | None = None
    ) -> dict:
        """Store a new object; its type is ``obj['object']`` and ``created`` orders lists."""
        self.conn.execute(
            "INSERT INTO objects (id, type, customer, test_clock, created, body)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (
                obj["id"],
                obj["object"],
                customer,
                test_clock,
                int(obj.get("created") or 0),
                json.dumps(obj),
            ),
        )
        return obj

    def save(self, obj: dict, **columns: Any) -> dict:
        """Overwrite a stored object's body (and optionally its customer/test_clock columns)."""
        sets = ["body = ?"]
        args: list[Any] = [json.dumps(obj)]
        for column in ("customer", "test_clock"):
            if column in columns:
                sets.append(f"{column} = ?")
                args.append(columns[column])
        args.append(obj["id"])
        self.conn.execute(f"UPDATE objects SET {', '.join(sets)} WHERE id = ?", args)
        return obj

    def mark_deleted(self, obj_id: str) -> None:
        """Flag an object deleted; it disappears from lists and retrieves."""
        self.conn.execute("UPDATE objects SET deleted = 1 WHERE id = ?", (obj_id,))

    def select(
        self,
        obj_type: str,
        where: str = "",
        args: tuple | list = (),
        *,
        order: str = "created DESC, seq DESC",
        limit: int | None = None,
    ) -> list[dict]:
        """Return live objects of a type matching an SQL condition (``body`` is JSON)."""
        sql = "SELECT body FROM objects WHERE type = ? AND deleted = 0"
        if where:
            sql += f" AND ({where})"
        sql += f" ORDER BY {order}"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [json.loads(r["body"]) for r in self.conn.execute(sql, (obj_type, *args))]

    def position(self, obj_id: str) -> tuple[int, int] | None:
        """Return the (created, seq) sort key of an object, used as a list cursor."""
        row = self.conn.execute(
            "SELECT created, seq FROM objects WHERE id = ?", (obj_id,)
        ).fetchone()
        return (row["created"], row["seq"]) if row else None

    # -- events ------------------------------------------------------------------

    def insert_event(self, event: dict) -> None:
        """Store an event body."""
        self.conn.execute(
            "INSERT INTO events (id, type, created, body) VALUES (?, ?, ?, ?)",
            (event["id"], event["type"], event["created"], json.dumps(event)),
        )

    def get_event(self, event_id: str) -> dict | None:
        """Return a stored event body, or None."""
        row = self.conn.execute("SELECT body FROM events WHERE id = ?", (event_id,)).fetchone()
        return json.loads(row["body"]) if row else None

    def pending_webhooks(self, event_id: str) -> int:
        """Count deliveries of an event that have not succeeded yet."""
        row = self.conn.execute(
            "SELECT COUNT(*) FROM webhook_deliveries WHERE event_id = ? AND status != 'delivered'",
            (event_id,),
        ).fetchone()
        return int(row[0])

    def clear(self) -> None:
        """Delete every row of every table."""
        for table in TABLES:
            self.conn.execute(f"DELETE FROM {table}")


@contextmanager
def transaction(path: str) -> Iterator[Store]:
    """Yield a Store inside ``BEGIN IMMEDIATE``; commit on success, roll back on error."""
    conn = connect(path)
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield Store(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    finally:
        conn.close()
