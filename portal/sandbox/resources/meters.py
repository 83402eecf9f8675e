"""Billing meters, meter events and meter event summaries.

Meter events are idempotent on ``identifier``: a second event with an identifier already
recorded answers 400 "An event already exists with identifier ..." as Stripe does (Stripe
enforces uniqueness for at least 24 hours; the sandbox for as long as it keeps the event).
A meter's event_name must be unique among meters.  Event timestamps must lie within the past
35 days and at most 5 minutes ahead of the customer's clock.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal, InvalidOperation

from ..billing import usage
from ..core.api import route
from ..core.context import Ctx
from ..core.errors import invalid, missing
from ..core.ids import new_id
from ..core.lists import equals, field, filtered, list_of, paginate
from ..core.objects import fetch, new_object, save
from ..core.params import LIST_SPEC, Anything, Int, Str, need
from ..core.render import renderer
from ..core.store import Store
from ..objects import meters

METER = "billing.meter"
EVENT_PAST_LIMIT = 35 * 86_400
EVENT_FUTURE_LIMIT = 5 * 60
WINDOWS = {"hour": 3600, "day": 86_400}
CREATE_SPEC = {
    "display_name": Str(),
    "event_name": Str(),
    "default_aggregation": {"formula": Str(usage.FORMULAS)},
    "customer_mapping": {"event_payload_key": Str(), "type": Str(("by_id",))},
    "value_settings": {"event_payload_key": Str()},
    "event_time_window": Str(("day", "hour")),
}


@renderer(usage.METER_EVENT)
def _render_event(store: Store, event: dict) -> dict:
    """Drop the storage id: meter events have no id in the API."""
    event.pop("id", None)
    return event


def _load(ctx: Ctx, meter_id: str) -> dict:
    return fetch(ctx, METER, meter_id, kind="billing meter")


@route("/v1/billing/meters", methods=["POST"])
def create_meter(ctx: Ctx) -> dict:
    """Create a billing meter."""
    p = ctx.validate(CREATE_SPEC)
    need(p, "display_name", "event_name", "default_aggregation")
    if not (p["default_aggregation"] or {}).get("formula"):
        raise invalid(
            "Missing required param: default_aggregation[formula].", "default_aggregation[formula]"
        )
    clash = ctx.store.select(METER, "json_extract(body, '$.event_name') = ?", (p["event_name"],))
    if clash:
        raise invalid(f"A meter with event_name {p['event_name']} already exists.", "event_name")
    meter = new_object(ctx, "mtr", METER)
    meter.update(
        {
            "customer_mapping": {
                "event_payload_key": (p.get("customer_mapping") or {}).get("event_payload_key")
                or "stripe_customer_id",
                "type": "by_id",
            },
            "default_aggregation": {"formula": p["default_aggregation"]["formula"]},
            "display_name": p["display_name"],
            "event_name": p["event_name"],
            "event_time_window": p.get("event_time_window"),
            "status": "active",
            "status_transitions": {"deactivated_at": None},
            "updated": meter["created"],
            "value_settings": {
                "event_payload_key": (p.get("value_settings") or {}).get("event_payload_key")
                or "value"
            },
        }
    )
    ctx.store.insert(meter)
    ctx.emit("billing.meter.created", meter)
    return meter


@route("/v1/billing/meters/<obj_id>", methods=["GET"])
def retrieve_meter(ctx: Ctx, obj_id: str) -> dict:
    """Retrieve a billing meter."""
    ctx.validate({})
    return _load(ctx, obj_id)


@route("/v1/billing/meters", methods=["GET"])
def list_meters(ctx: Ctx) -> dict:
    """List billing meters, optionally by status."""
    p = ctx.validate({**LIST_SPEC, "status": Str(("active", "inactive"))})
    filters = {"status": equals(field("status"))}
    return paginate(ctx.store, p, "/v1/billing/meters", obj_type=METER, **filtered(p, filters))


@route("/v1/billing/meters/<obj_id>", methods=["POST"])
def update_meter(ctx: Ctx, obj_id: str) -> dict:
    """Rename a billing meter (the only field Stripe lets change)."""
    p = ctx.validate({"display_name": Str()})
    meter = _load(ctx, obj_id)
    before = dict(meter)
    if p.get("display_name"):
        meter["display_name"] = p["display_name"]
        meter["updated"] = ctx.now()
    save(ctx, meter)
    if meter != before:
        ctx.emit("billing.meter.updated", meter, before=before)
    return meter


def _set_status(ctx: Ctx, obj_id: str, status: str) -> dict:
    meter = _load(ctx, obj_id)
    if meter["status"] == status:
        verb = "deactivated" if status == "inactive" else "active"
        raise invalid(f"This meter is already {verb}.")
    return meters.transition(ctx, meter, status, ctx.now())


@route("/v1/billing/meters/<obj_id>/deactivate", methods=["POST"])
def deactivate_meter(ctx: Ctx, obj_id: str) -> dict:
    """Deactivate a meter: it stops accepting events."""
    ctx.validate({})
    return _set_status(ctx, obj_id, "inactive")


@route("/v1/billing/meters/<obj_id>/reactivate", methods=["POST"])
def reactivate_meter(ctx: Ctx, obj_id: str) -> dict:
    """Reactivate a deactivated meter."""
    ctx.validate({})
    return _set_status(ctx, obj_id, "active")


def _event_row_id(identifier: str) -> str:
    return "mev_" + hashlib.sha256(identifier.encode()).hexdigest()[:24]


@route("/v1/billing/meter_events", methods=["POST"])
def create_meter_event(ctx: Ctx) -> dict:
    """Record a usage event for the active meter with this event_name."""
    p = ctx.validate(
        {"event_name": Str(), "identifier": Str(), "timestamp": Int(), "payload": Anything()}
    )
    need(p, "event_name", "payload")
    payload = p["payload"]
    if not isinstance(payload, dict):
        raise invalid("Invalid object: payload", "payload")
    meters = ctx.store.select(METER, "json_extract(body, '$.event_name') = ?", (p["event_name"],))
    meter = meters[0] if meters else None
    customer_key = (meter or {}).get("customer_mapping", {}).get(
        "event_payload_key"
    ) or "stripe_customer_id"
    value_key = (meter or {}).get("value_settings", {}).get("event_payload_key") or "value"
    customer_id = payload.get(customer_key)
    if not customer_id:
        raise invalid(
            f"Missing required param: payload[{customer_key}].", f"payload[{customer_key}]"
        )
    if meter is not None and meter["status"] != "active":
        raise invalid(f"The meter for event {p['event_name']} is inactive.", "event_name")
    formula = ((meter or {}).get("default_aggregation") or {}).get("formula")
    if value_key not in payload and formula in ("sum", "last"):
        raise invalid(f"Missing required param: payload[{value_key}].", f"payload[{value_key}]")
    if value_key in payload:
        try:
            Decimal(payload[value_key])
        except InvalidOperation:
            raise invalid(
                f"Invalid value for payload[{value_key}]: must be a number.",
                f"payload[{value_key}]",
            ) from None
    customer = ctx.store.get(customer_id, "customer")
    if customer is None:
        raise missing("customer", customer_id, f"payload[{customer_key}]")
    now = ctx.now(customer=customer_id)
    timestamp = p.get("timestamp", now)
    if timestamp < now - EVENT_PAST_LIMIT or timestamp > now + EVENT_FUTURE_LIMIT:
        raise invalid(
            "Timestamp must be within the past 35 calendar days or up to 5 minutes in the future.",
            "timestamp",
        )
    identifier = p.get("identifier") or new_id("mtrevt")
    row_id = _event_row_id(identifier)
    if ctx.store.get(row_id) is not None:
        raise invalid(f"An event already exists with identifier {identifier}.", "identifier")
    event = {
        "id": row_id,
        "object": usage.METER_EVENT,
        "created": now,
        "event_name": p["event_name"],
        "identifier": identifier,
        "livemode": False,
        "payload": dict(payload),
        "timestamp": timestamp,
    }
    ctx.store.insert(event, customer=customer_id, test_clock=customer.get("test_clock"))
    return event


@route("/v1/billing/meters/<obj_id>/event_summaries", methods=["GET"])
def list_event_summaries(ctx: Ctx, obj_id: str) -> dict:
    """Aggregate a customer's usage of a meter over [start_time, end_time), by hour or day."""
    p = ctx.validate(
        {
            **LIST_SPEC,
            "customer": Str(),
            "start_time": Int(),
            "end_time": Int(),
            "value_grouping_window": Str(tuple(WINDOWS)),
        }
    )
    need(p, "customer", "start_time", "end_time")
    meter = _load(ctx, obj_id)
    start, end = p["start_time"], p["end_time"]
    for name in ("start_time", "end_time"):
        if p[name] % 60:
            raise invalid(f"{name} must be aligned with minute boundaries.", name)
    if end <= start:
        raise invalid("end_time must be after start_time.", "end_time")
    size = WINDOWS.get(p.get("value_grouping_window") or "")
    formula = meter["default_aggregation"]["formula"]
    summaries = []
    for lo, hi in usage.windows(start, end, size):
        events = usage.meter_events(ctx.store, meter, p["customer"], lo, hi)
        if size is not None and not events:
            continue
        digest = hashlib.sha256(f"{obj_id}:{p['customer']}:{lo}:{hi}".encode()).hexdigest()[:32]
        summaries.append(
            {
                "id": f"mtrusg_{digest}",
                "object": "billing.meter_event_summary",
                "aggregated_value": usage.json_number(usage.aggregate(formula, events)),
                "end_time": hi,
                "livemode": False,
                "meter": obj_id,
                "start_time": lo,
            }
        )
    summaries.reverse()
    return _page(summaries, p, f"/v1/billing/meters/{obj_id}/event_summaries")


def _page(rows: list[dict], p: dict, url: str) -> dict:
    """Cursor-paginate an in-memory list of summaries (newest window first)."""
    limit = p.get("limit") or 10
    ids = [r["id"] for r in rows]
    start = ids.index(p["starting_after"]) + 1 if p.get("starting_after") in ids else 0
    page = list_of(rows[start : start + limit], url)
    page["has_more"] = start + limit < len(rows)
    return page
