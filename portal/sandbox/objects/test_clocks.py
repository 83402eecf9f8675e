"""Test clocks: the one transition function (ready -> advancing -> ready)."""

from __future__ import annotations

from typing import Any

from ..core.context import Ctx
from ..core.objects import check_move, save

ALLOWED = {"ready": {"advancing"}, "advancing": {"ready", "internal_failure"}}
EVENTS = {
    "advancing": "test_helpers.test_clock.advancing",
    "ready": "test_helpers.test_clock.ready",
    "internal_failure": "test_helpers.test_clock.internal_failure",
}


def transition(ctx: Ctx, clock: dict, status: str, **changes: Any) -> dict:
    """Move a test clock to ``status`` with ``changes``, save it and emit Stripe's event."""
    check_move("test clock", ALLOWED, clock["status"], status)
    clock.update(changes)
    clock["status"] = status
    save(ctx, clock)
    ctx.emit(EVENTS[status], clock)
    return clock
