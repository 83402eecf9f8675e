"""Meter usage: aggregate a customer's meter events over a time range.

Formulas follow Stripe's billing meters: ``sum`` adds the events' values, ``count`` counts the
events, ``last`` takes the value of the latest event (by timestamp, then by arrival).  Ranges
are [start, end): start inclusive, end exclusive, as for meter event summaries and billing
periods.  Values are decimal strings in payloads and are kept exact as Decimal.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from ..core.store import Store

METER_EVENT = "billing.meter_event"
FORMULAS = ("sum", "count", "last")


def aggregate(formula: str, events: Sequence[tuple[int, Decimal]]) -> Decimal:
    """Aggregate (timestamp, value) pairs given in arrival order with a meter's formula."""
    if formula == "count":
        return Decimal(len(events))
    if formula == "last":
        if not events:
            return Decimal(0)
        latest = max(range(len(events)), key=lambda i: (events[i][0], i))
        return events[latest][1]
    if formula == "sum":
        return sum((value for _, value in events), Decimal(0))
    raise ValueError(f"unknown aggregation formula {formula!r}")


def meter_events(
    store: Store, meter: dict[str, Any], customer_id: str, start: int, end: int
) -> list[tuple[int, Decimal]]:
    """Return (timestamp, value) of a customer's events for a meter in [start, end), by arrival."""
    value_key = (meter.get("value_settings") or {}).get("event_payload_key") or "value"
    rows = store.conn.execute(
        "SELECT body FROM objects WHERE type = ? AND customer = ? AND deleted = 0"
        " AND json_extract(body, '$.event_name') = ?"
        " AND json_extract(body, '$.timestamp') >= ? AND json_extract(body, '$.timestamp') < ?"
        " ORDER BY seq",
        (METER_EVENT, customer_id, meter["event_name"], start, end),
    )
    pairs = []
    for row in rows:
        event = json.loads(row["body"])
        raw = (event.get("payload") or {}).get(value_key)
        value = Decimal(raw) if raw not in (None, "") else Decimal(1)
        pairs.append((int(event["timestamp"]), value))
    return pairs


def usage(store: Store, meter: dict[str, Any], customer_id: str, start: int, end: int) -> Decimal:
    """Return a customer's aggregated usage of a meter over [start, end)."""
    formula = (meter.get("default_aggregation") or {}).get("formula", "sum")
    return aggregate(formula, meter_events(store, meter, customer_id, start, end))


def windows(start: int, end: int, size: int | None) -> Iterable[tuple[int, int]]:
    """Split [start, end) at multiples of size seconds (UTC hours or days); one window if None."""
    if size is None:
        yield start, end
        return
    at = start
    while at < end:
        upper = min((at // size + 1) * size, end)
        yield at, upper
        at = upper


def json_number(value: Decimal) -> int | float:
    """Return an aggregated value as the JSON number Stripe shows (int when whole)."""
    return int(value) if value == value.to_integral_value() else float(value)
