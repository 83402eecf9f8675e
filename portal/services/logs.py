"""Structured logs: one JSON object per line, the request id in every line, secrets masked.

The request id starts with each web request (or the caller's X-Request-Id) and travels with
the RQ jobs the request queues, so an event's processing can be found from the request that
received it. Card numbers, API keys, webhook secrets and full email addresses never reach a
log line: they are masked in the message and in every extra field.
"""
from __future__ import annotations

import json
import logging
import re
import secrets
from contextvars import ContextVar, Token
from datetime import UTC, datetime

_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
REQUEST_ID_SHAPE = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
# A card number: 13 to 19 digits, perhaps grouped by spaces or dashes.
_CARD = re.compile(r"\b(?:\d[ -]?){12,18}\d\b")
_KEY = re.compile(r"\b((?:sk|rk|pk|bp)_(?:test|live)_|whsec_)[A-Za-z0-9_]+")
_EMAIL = re.compile(r"\b([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+\.[A-Za-z]{2,})\b")
# LogRecord's own attributes: everything else on a record is an extra field worth logging.
_RECORD_FIELDS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def new_request_id(offered: str | None = None) -> str:
    """Return the caller's request id when it is well formed, else a fresh one."""
    if offered and REQUEST_ID_SHAPE.match(offered):
        return offered
    return secrets.token_hex(8)


def set_request_id(value: str | None) -> Token:
    """Make `value` the request id of log lines from this context; return the reset token."""
    return _request_id.set(value)


def reset_request_id(token: Token) -> None:
    """Bring back the request id in force before `set_request_id` returned `token`."""
    _request_id.reset(token)


def current_request_id() -> str | None:
    """Return the request id of this context, if any."""
    return _request_id.get()


def mask(text: str) -> str:
    """Return `text` with card numbers, keys and secrets, and email addresses masked."""
    text = _CARD.sub("[card]", text)
    text = _KEY.sub(lambda m: m.group(1) + "***", text)
    return _EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", text)


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON object: time, level, logger, message, request id, extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": mask(record.getMessage()),
            "request_id": current_request_id(),
        }
        for key, value in vars(record).items():
            if key not in _RECORD_FIELDS and not key.startswith("_"):
                entry[key] = mask(value) if isinstance(value, str) else value
        if record.exc_info:
            entry["exception"] = mask(self.formatException(record.exc_info))
        return json.dumps(entry, default=lambda value: mask(str(value)))


class MaskingFormatter(logging.Formatter):
    """Plain lines, with the request id and the same masking as the JSON lines."""

    def format(self, record: logging.LogRecord) -> str:
        return mask(f"[{current_request_id() or '-'}] " + super().format(record))


def configure_logging(log_format: str, level: int = logging.INFO) -> None:
    """Send the portal's logs (and gunicorn-less servers' root logs) to stderr in `log_format`."""
    root = logging.getLogger()
    formatter = JsonFormatter() if log_format == "json" else MaskingFormatter(
        "%(asctime)s %(levelname)s %(name)s: %(message)s")
    for handler in root.handlers:
        if getattr(handler, "portal_handler", False):
            handler.setFormatter(formatter)
            return
    handler = logging.StreamHandler()
    handler.portal_handler = True  # type: ignore[attr-defined]
    handler.setFormatter(formatter)
    root.addHandler(handler)
    if root.level > level or root.level == logging.NOTSET:
        root.setLevel(level)
