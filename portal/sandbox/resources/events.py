"""``/v1/events``: list and retrieve recorded events."""

from __future__ import annotations

from ..core.api import route
from ..core.context import Ctx
from ..core.errors import invalid, missing
from ..core.events import event_output
from ..core.lists import Filter, filtered, one_of, paginate
from ..core.params import LIST_SPEC, Bool, List, Str

UNDELIVERED = (
    "EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = events.id"
    " AND d.status != 'delivered')"
)
FILTERS = {
    "type": Filter("type LIKE ?", lambda t: [t.replace("%", "").replace("*", "%")]),
    "types": one_of("type"),
    "delivery_success": Filter(
        lambda success: f"NOT {UNDELIVERED}" if success else UNDELIVERED,
        lambda _: [],
        when="present",
    ),
}


@route("/v1/events", methods=["GET"])
def list_events(ctx: Ctx) -> dict:
    """List events newest first, filtered by type (``*`` wildcard), types[] and created."""
    p = ctx.validate({**LIST_SPEC, "type": Str(), "types": List(Str()), "delivery_success": Bool()})
    if p.get("type") and p.get("types"):
        raise invalid("You cannot specify both `type` and `types`.", "types")
    if len(p.get("types") or []) > 20:
        raise invalid("You can filter by at most 20 event types.", "types")
    return paginate(
        ctx.store,
        p,
        "/v1/events",
        table="events",
        transform=lambda e: event_output(ctx.store, e),
        **filtered(p, FILTERS),
    )


@route("/v1/events/<obj_id>", methods=["GET"])
def retrieve_event(ctx: Ctx, obj_id: str) -> dict:
    """Retrieve one event with its current pending_webhooks count."""
    ctx.validate({})
    event = ctx.store.get_event(obj_id)
    if event is None:
        raise missing("event", obj_id)
    return event_output(ctx.store, event)
