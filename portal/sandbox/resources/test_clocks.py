"""Test clocks: create, retrieve, list, advance and delete.

Advancing runs the billing engine for every object on the clock up to the new frozen_time,
stepping the clock through each due time so objects and events carry the times Stripe would
give them.  The clock reports ``advancing`` (with status_details.advancing.target_frozen_time)
in the advance response, like Stripe's asynchronous advance, and is ``ready`` once the work is
done, which in the sandbox is before the response is sent.  Events:
test_helpers.test_clock.created / advancing / ready / deleted.  A clock cannot advance more
than two intervals of its shortest subscription, nor more than two years without one.
Deleting a clock deletes its customers and everything attached to them.
"""

from __future__ import annotations

import copy

from ..billing import engine, periods
from ..billing import subscription_state as subs
from ..core.api import route
from ..core.context import Ctx
from ..core.errors import invalid
from ..core.ids import new_id
from ..core.lists import paginate
from ..core.objects import deleted_stub, fetch
from ..core.params import LIST_SPEC, Int, Str, need
from ..objects import test_clocks

CLOCK = "test_helpers.test_clock"
LIFETIME = 30 * 86_400


def _load(ctx: Ctx, clock_id: str) -> dict:
    return fetch(ctx, CLOCK, clock_id, kind="test clock")


@route("/v1/test_helpers/test_clocks", methods=["POST"])
def create_test_clock(ctx: Ctx) -> dict:
    """Create a test clock frozen at frozen_time."""
    p = ctx.validate({"frozen_time": Int(), "name": Str()})
    need(p, "frozen_time")
    created = ctx.wall_now()
    clock = {
        "id": new_id("clock"),
        "object": CLOCK,
        "created": created,
        "deletes_after": created + LIFETIME,
        "frozen_time": p["frozen_time"],
        "livemode": False,
        "name": p.get("name"),
        "status": "ready",
        "status_details": {},
    }
    ctx.store.insert(clock, test_clock=clock["id"])
    ctx.emit("test_helpers.test_clock.created", clock)
    return clock


@route("/v1/test_helpers/test_clocks/<obj_id>", methods=["GET"])
def retrieve_test_clock(ctx: Ctx, obj_id: str) -> dict:
    """Retrieve a test clock."""
    ctx.validate({})
    return _load(ctx, obj_id)


@route("/v1/test_helpers/test_clocks", methods=["GET"])
def list_test_clocks(ctx: Ctx) -> dict:
    """List test clocks, newest first."""
    p = ctx.validate(LIST_SPEC)
    return paginate(ctx.store, p, "/v1/test_helpers/test_clocks", obj_type=CLOCK)


def _advance_limit(ctx: Ctx, clock: dict) -> int:
    """Return the furthest time the clock may reach: two intervals of its shortest subscription."""
    frozen = clock["frozen_time"]
    limits = [periods.boundary(frozen, "year", 2, 1)]
    for sub in ctx.store.select("subscription", "test_clock = ?", (clock["id"],)):
        if sub["status"] not in subs.ENDED:
            interval, count = sub["_interval"]
            limits.append(periods.boundary(frozen, interval, count, 2))
    return min(limits)


@route("/v1/test_helpers/test_clocks/<obj_id>/advance", methods=["POST"])
def advance_test_clock(ctx: Ctx, obj_id: str) -> dict:
    """Move a clock forward, running every billing step that falls due on the way."""
    p = ctx.validate({"frozen_time": Int()})
    need(p, "frozen_time")
    clock = _load(ctx, obj_id)
    target = p["frozen_time"]
    if target <= clock["frozen_time"]:
        raise invalid(
            "The frozen_time must be after the test clock's current frozen_time.", "frozen_time"
        )
    if target > _advance_limit(ctx, clock):
        raise invalid(
            "Cannot advance the test clock more than two intervals beyond the "
            "shortest subscription's interval (or two years without one).",
            "frozen_time",
        )
    test_clocks.transition(
        ctx, clock, "advancing", status_details={"advancing": {"target_frozen_time": target}}
    )
    response = copy.deepcopy(clock)
    engine.run_due(ctx, obj_id, target)
    clock = _load(ctx, obj_id)
    test_clocks.transition(ctx, clock, "ready", frozen_time=target, status_details={})
    return response


@route("/v1/test_helpers/test_clocks/<obj_id>", methods=["DELETE"])
def delete_test_clock(ctx: Ctx, obj_id: str) -> dict:
    """Delete a clock together with the customers and objects attached to it."""
    ctx.validate({})
    clock = _load(ctx, obj_id)
    ctx.store.conn.execute("UPDATE objects SET deleted = 1 WHERE test_clock = ?", (obj_id,))
    ctx.emit("test_helpers.test_clock.deleted", clock)
    return deleted_stub(clock)
