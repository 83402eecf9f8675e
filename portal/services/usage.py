"""Usage ingestion: validate events, store them once per identifier, keep hourly aggregates."""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from sqlalchemy import case, column, table
from sqlalchemy.dialects import postgresql, sqlite

from portal.extensions import db
from portal.models import UsageEvent, UsageHourly
from portal.services.api_keys import note_key_used
from portal.services.catalog import load_catalog
from portal.services.usage_notices import announce_thresholds

MAX_BATCH = 1000
# Stripe's meter event limits: events older than 35 days or over 5 minutes ahead are refused.
MAX_AGE = timedelta(days=35)
MAX_AHEAD = timedelta(minutes=5)
IDENTIFIER_MAX = 100
METADATA_MAX_KEYS = 50
METADATA_MAX_CHARS = 2000
EVENT_FIELDS = {"meter", "quantity", "timestamp", "identifier", "metadata"}
# Quantities are whole units; the ceiling keeps sums inside a signed 64-bit column.
QUANTITY_MAX = 10**12
log = logging.getLogger(__name__)


class UsageRequestInvalid(ValueError):
    """The request body as a whole cannot be read as usage events."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class ItemResult:
    """What became of one event of a request: accepted, duplicate or rejected (with why)."""

    index: int
    identifier: str | None
    status: str = "accepted"
    errors: list[dict] = field(default_factory=list)

    def as_json(self) -> dict:
        """Return the item as the API answers it."""
        answer: dict = {"index": self.index, "identifier": self.identifier, "status": self.status}
        if self.errors:
            answer["errors"] = self.errors
        return answer


@lru_cache(maxsize=1)
def meter_aggregations() -> dict[str, str]:
    """Return each catalog meter's aggregation by key (the catalog ships with the code)."""
    return {key: meter["aggregation"] for key, meter in load_catalog()["meters"].items()}


def events_of(payload: object) -> list:
    """Return the events a request body carries: one event object or {"events": [...]}."""
    if not isinstance(payload, dict):
        raise UsageRequestInvalid(
            "invalid_body", "The body must be a JSON object: one event or {\"events\": [...]}.")
    if "events" not in payload:
        return [payload]
    events = payload["events"]
    if set(payload) != {"events"}:
        raise UsageRequestInvalid("invalid_body",
                                  "A batch body has only the field \"events\".")
    if not isinstance(events, list) or not events:
        raise UsageRequestInvalid("invalid_body", "\"events\" must be a non-empty list.")
    if len(events) > MAX_BATCH:
        raise UsageRequestInvalid(
            "batch_too_large", f"A batch holds at most {MAX_BATCH} events; this one has "
                               f"{len(events)}.")
    return events


def _problem(name: str, code: str, message: str) -> dict:
    return {"field": name, "code": code, "message": message}


def _parse_timestamp(value: object) -> datetime | None:
    """Return an aware UTC time from Unix seconds or an RFC 3339 string with a zone."""
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str) and len(value) <= 40:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed.astimezone(UTC) if parsed.tzinfo is not None else None
    return None


def check_event(item: object, now: datetime) -> tuple[dict | None, list[dict]]:
    """Return (the row to store, []) for a good event, or (None, the problems by field)."""
    if not isinstance(item, dict):
        return None, [_problem("event", "invalid_type", "Each event must be a JSON object.")]
    unknown = item.keys() - EVENT_FIELDS
    problems = [_problem(name, "unknown_field", f"\"{name}\" is not an event field.")
                for name in sorted(unknown, key=str)] if unknown else []
    meter = item.get("meter")
    if meter is None:
        problems.append(_problem("meter", "required", "The meter is required."))
    elif not isinstance(meter, str) or meter not in meter_aggregations():
        known = ", ".join(meter_aggregations())
        problems.append(_problem("meter", "unknown_meter",
                                 f"Unknown meter; known meters: {known}."))
    quantity = item.get("quantity")
    if quantity is None:
        problems.append(_problem("quantity", "required", "The quantity is required."))
    elif isinstance(quantity, bool) or not isinstance(quantity, int):
        problems.append(_problem("quantity", "invalid_type",
                                 "The quantity must be a whole number."))
    elif not 0 <= quantity <= QUANTITY_MAX:
        problems.append(_problem("quantity", "out_of_range",
                                 f"The quantity must be between 0 and {QUANTITY_MAX}."))
    timestamp = _parse_timestamp(item.get("timestamp"))
    if "timestamp" not in item:
        problems.append(_problem("timestamp", "required", "The timestamp is required."))
    elif timestamp is None:
        problems.append(_problem("timestamp", "invalid_format",
                                 "The timestamp must be Unix seconds or an RFC 3339 time with "
                                 "a zone, such as 2026-11-29T20:45:00Z."))
    elif timestamp < now - MAX_AGE:
        problems.append(_problem("timestamp", "too_old",
                                 "The timestamp is more than 35 days in the past; meters "
                                 "accept events up to 35 days old."))
    elif timestamp > now + MAX_AHEAD:
        problems.append(_problem("timestamp", "in_future",
                                 "The timestamp is more than 5 minutes in the future."))
    identifier = item.get("identifier")
    if identifier is None:
        problems.append(_problem("identifier", "required", "The identifier is required."))
    elif (not isinstance(identifier, str) or not 1 <= len(identifier) <= IDENTIFIER_MAX
          or not identifier.isprintable()):
        problems.append(_problem("identifier", "invalid_format",
                                 f"The identifier must be 1 to {IDENTIFIER_MAX} printable "
                                 "characters."))
    metadata = item.get("metadata", {})
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict):
        problems.append(_problem("metadata", "invalid_type", "The metadata must be an object."))
    else:
        # Encoded once: the size check and the stored column use the same text.
        encoded = json.dumps(metadata) if metadata else "{}"
        if len(metadata) > METADATA_MAX_KEYS or len(encoded) > METADATA_MAX_CHARS:
            problems.append(_problem("metadata", "too_large",
                                     f"The metadata may have {METADATA_MAX_KEYS} keys and "
                                     f"{METADATA_MAX_CHARS} characters of JSON at most."))
    if problems:
        return None, problems
    return {"meter": meter, "quantity": quantity, "timestamp": timestamp,
            "identifier": identifier, "metadata": encoded}, []


def _insert_for_dialect():
    """Return the INSERT construct with ON CONFLICT for the session's database."""
    dialect = db.session.get_bind().dialect.name
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


# The ingestion writes name the columns without their types: the values arrive already in the
# form the database stores (JSON as text; on SQLite, times in SQLAlchemy's own text format), so
# a batch of 1,000 events skips some 5,000 per-value conversions. Same tables, same statements.
EVENT_COLUMNS = ("account_id", "api_key_id", "meter", "quantity", "timestamp", "identifier",
                 "metadata", "received_at")
HOURLY_COLUMNS = ("account_id", "meter", "hour", "quantity", "event_count", "last_quantity",
                  "last_at")
event_rows = table(UsageEvent.__tablename__, *(column(name) for name in EVENT_COLUMNS))
hourly_rows = table(UsageHourly.__tablename__, *(column(name) for name in HOURLY_COLUMNS))


def _stored_time():
    """Return the function giving a UTC time as the session's database takes it."""
    if db.session.get_bind().dialect.name == "sqlite":
        # UTCDateTime on SQLite: naive UTC in SQLAlchemy's '%Y-%m-%d %H:%M:%S.%f' text, which
        # is what keeps comparisons between stored times (as strings) right.
        return lambda moment: moment.replace(tzinfo=None).isoformat(" ", "microseconds")
    return lambda moment: moment


def _hourly_totals(rows: list[dict]) -> list[dict]:
    """Return one aggregate row per (meter, hour) of the newly stored events."""
    totals: dict[tuple[str, datetime], dict] = {}
    for row in rows:
        hour = row["timestamp"].replace(minute=0, second=0, microsecond=0)
        total = totals.get((row["meter"], hour))
        if total is None:
            totals[(row["meter"], hour)] = {
                "account_id": row["account_id"], "meter": row["meter"], "hour": hour,
                "quantity": row["quantity"], "event_count": 1,
                "last_quantity": row["quantity"], "last_at": row["timestamp"]}
            continue
        total["quantity"] += row["quantity"]
        total["event_count"] += 1
        if row["timestamp"] >= total["last_at"]:
            total["last_quantity"], total["last_at"] = row["quantity"], row["timestamp"]
    # One lock order for every transaction, so concurrent batches cannot deadlock.
    stored = _stored_time()
    return [{**total, "hour": stored(total["hour"]), "last_at": stored(total["last_at"])}
            for _key, total in sorted(totals.items())]


def _add_to_hourly(totals: list[dict]) -> None:
    """Add the totals to the hourly aggregates with one upsert that is safe under concurrency."""
    insert = _insert_for_dialect()
    aggregates = hourly_rows
    statement = insert(aggregates)
    newer = statement.excluded.last_at >= aggregates.c.last_at
    statement = statement.on_conflict_do_update(
        index_elements=["account_id", "meter", "hour"],
        set_={
            "quantity": aggregates.c.quantity + statement.excluded.quantity,
            "event_count": aggregates.c.event_count + statement.excluded.event_count,
            "last_quantity": case((newer, statement.excluded.last_quantity),
                                  else_=aggregates.c.last_quantity),
            "last_at": case((newer, statement.excluded.last_at), else_=aggregates.c.last_at),
        },
    )
    db.session.execute(statement, totals)


def record_usage(account_id: int, api_key_id: int, key_last_used_at: datetime | None,
                 events: list, now: datetime | None = None) -> list[ItemResult]:
    """Store the good events not seen before and add them to the hourly aggregates; commit.

    Returns one result per event in request order. Duplicates (an identifier already stored
    for the account, or repeated in this batch) change nothing.
    """
    now = now or datetime.now(UTC)
    results: list[ItemResult] = []
    rows: list[dict] = []
    claimed: set[str] = set()
    for index, item in enumerate(events):
        row, problems = check_event(item, now)
        identifier = item.get("identifier") if isinstance(item, dict) else None
        result = ItemResult(index, identifier if isinstance(identifier, str) else None)
        results.append(result)
        if problems:
            result.status, result.errors = "rejected", problems
        elif row["identifier"] in claimed:
            result.status = "duplicate"
        else:
            claimed.add(row["identifier"])
            rows.append({"account_id": account_id, "api_key_id": api_key_id, **row})
    stored: set[str] = set()
    if rows:
        rows.sort(key=lambda row: row["identifier"])
        stored_time = _stored_time()
        received = stored_time(now)
        statement = (_insert_for_dialect()(event_rows)
                     .on_conflict_do_nothing(index_elements=["account_id", "identifier"])
                     .returning(event_rows.c.identifier))
        stored = set(db.session.scalars(statement, [
            {**row, "timestamp": stored_time(row["timestamp"]), "received_at": received}
            for row in rows]))
        fresh = [row for row in rows if row["identifier"] in stored]
        if fresh:
            _add_to_hourly(_hourly_totals(fresh))
    for result in results:
        if result.status == "accepted" and result.identifier not in stored:
            result.status = "duplicate"
    note_key_used(api_key_id, key_last_used_at, now)
    db.session.commit()
    if stored:
        _announce_after_commit(account_id, {row["meter"] for row in rows
                                            if row["identifier"] in stored}, now)
    return results


def _announce_after_commit(account_id: int, meters: set[str], now: datetime) -> None:
    """Send threshold notices for the meters just fed, once the events are safely stored.

    The events are committed and the answer must say so: a failure here is logged and the
    next ingestion for the meter announces the threshold instead (the check is on totals).
    """
    try:
        announce_thresholds(account_id, meters, now)
    except Exception:
        db.session.rollback()
        log.exception("usage threshold notices failed for account %s", account_id)
