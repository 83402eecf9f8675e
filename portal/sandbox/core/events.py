"""Events: one record per state change, plus the outbox rows that carry it to webhooks.

``emit`` snapshots the object after the change (rendered as the API returns it), stores an
``event`` with ``previous_attributes`` for ``*.updated`` types, and, in the same
transaction, queues one delivery per enabled webhook endpoint that listens to the type.
In-process listeners (``on``) let one resource react to another's events inside that
transaction (an invoice reacting to its PaymentIntent succeeding, for instance).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Protocol

from .ids import new_id
from .render import render
from .store import Store
from .version import API_VERSION

TEST_CLOCK = "test_helpers.test_clock"


class Ctx(Protocol):
    """What emitting needs of ``core.context.Ctx`` (which imports this module)."""

    store: Store
    request_id: str | None
    idempotency_key: str | None
    deliveries_queued: bool

    def now(self, customer: str | None = None, clock_id: str | None = None) -> int: ...

    def wall_now(self) -> int: ...


Listener = Callable[[Any, dict], None]
_listeners: dict[str, list[Listener]] = {}


def on(event_type: str) -> Callable[[Listener], Listener]:
    """Register ``fn(ctx, event)`` to run whenever an event of this type is emitted."""

    def register(fn: Listener) -> Listener:
        _listeners.setdefault(event_type, []).append(fn)
        return fn

    return register


def diff(before: dict, after: dict) -> dict:
    """Return Stripe's ``previous_attributes``: old values of changed keys (nested for dicts)."""
    previous: dict[str, Any] = {}
    for key in set(before) | set(after):
        if key.startswith("_"):
            continue
        old, new = before.get(key), after.get(key)
        if old == new:
            continue
        if isinstance(old, dict) and isinstance(new, dict):
            previous[key] = diff(old, new)
        else:
            previous[key] = old
    return previous


def matches(enabled_events: list[str], event_type: str) -> bool:
    """Tell whether an endpoint's ``enabled_events`` selects this event type."""
    return "*" in enabled_events or event_type in enabled_events


def emit(
    ctx: Ctx,
    event_type: str,
    obj: dict,
    *,
    previous: dict | None = None,
    before: dict | None = None,
    customer: str | None = None,
) -> dict:
    """Record an event for ``obj`` (after the change) and queue its webhook deliveries.

    Pass ``before`` (the object before the change) to compute ``previous_attributes``, or
    ``previous`` directly. ``customer`` picks the clock the event's ``created`` reads.
    """
    store = ctx.store
    snapshot = render(store, obj)
    data: dict[str, Any] = {"object": snapshot}
    if before is not None:
        previous = diff(render(store, before), snapshot)
    if previous is not None:
        data["previous_attributes"] = previous
    owner = customer or (obj.get("customer") if isinstance(obj.get("customer"), str) else None)
    if obj.get("object") == "customer":
        owner = obj["id"]
    event = {
        "id": new_id("evt"),
        "object": "event",
        "api_version": API_VERSION,
        "created": ctx.now(
            customer=owner, clock_id=obj["id"] if obj.get("object") == TEST_CLOCK else None
        ),
        "data": data,
        "livemode": False,
        "pending_webhooks": 0,
        "request": {"id": ctx.request_id, "idempotency_key": ctx.idempotency_key},
        "type": event_type,
    }
    endpoints = [
        ep
        for ep in store.select("webhook_endpoint")
        if ep.get("status") == "enabled" and matches(ep.get("enabled_events", []), event_type)
    ]
    event["pending_webhooks"] = len(endpoints)
    store.insert_event(event)
    payload = json.dumps(event, indent=2)
    queued_at = ctx.wall_now()
    for endpoint in endpoints:
        store.conn.execute(
            "INSERT INTO webhook_deliveries (id, event_id, endpoint_id, url, secret, payload,"
            " created, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                new_id("whdel"),
                event["id"],
                endpoint["id"],
                endpoint["url"],
                endpoint["_secret"],
                payload,
                queued_at,
                queued_at,
            ),
        )
    if endpoints:
        ctx.deliveries_queued = True
    for listener in _listeners.get(event_type, []):
        listener(ctx, event)
    return event


def event_output(store: Store, event: dict) -> dict:
    """Return an event with its live ``pending_webhooks`` count."""
    out = dict(event)
    out["pending_webhooks"] = store.pending_webhooks(event["id"])
    return out
