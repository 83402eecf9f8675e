"""Database backups: SQLite's online backup API, or the pg_dump command for PostgreSQL."""
from __future__ import annotations

import os
import shlex
import sqlite3
from pathlib import Path

from sqlalchemy.engine import make_url


class BackupRefused(Exception):
    """Raised when a backup cannot be written where it was asked for."""


def backup_sqlite(database_url: str, target: Path) -> int:
    """Copy a live SQLite database to `target` page by page; return its size in bytes.

    sqlite3's backup API copies a consistent snapshot while the portal keeps serving (WAL
    readers and writers are not blocked). The copy is written next to the target and renamed
    into place, so a half-written file never carries the target's name.
    """
    source_path = make_url(database_url).database
    if not source_path or source_path == ":memory:":
        raise BackupRefused("the database is in memory: there is no file to back up")
    if target.exists():
        raise BackupRefused(f"{target} exists: choose a new file name")
    if not target.parent.is_dir():
        raise BackupRefused(f"{target.parent} is not a folder")
    partial = target.with_name(f".{target.name}.partial")
    source = sqlite3.connect(source_path)
    try:
        destination = sqlite3.connect(partial)
        try:
            source.backup(destination)
        finally:
            destination.close()
    finally:
        source.close()
    os.chmod(partial, 0o600)
    os.replace(partial, target)
    return target.stat().st_size


def pg_dump_command(database_url: str, target: Path) -> str:
    """Return the pg_dump command that backs up this PostgreSQL database, without its password."""
    url = make_url(database_url)
    parts = ["pg_dump", "--format=custom", "--no-owner"]
    if url.host:
        parts += ["--host", url.host]
    if url.port:
        parts += ["--port", str(url.port)]
    if url.username:
        parts += ["--username", url.username]
    parts += ["--file", str(target), url.database or ""]
    return shlex.join(parts)
