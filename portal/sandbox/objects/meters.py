"""Billing meters: the one transition function (active <-> inactive)."""

from __future__ import annotations

from ..core.context import Ctx
from ..core.objects import check_move, save

ALLOWED = {"active": {"inactive"}, "inactive": {"active"}}
EVENTS = {"inactive": "billing.meter.deactivated", "active": "billing.meter.reactivated"}


def transition(ctx: Ctx, meter: dict, status: str, at: int) -> dict:
    """Deactivate or reactivate a meter at ``at``, save it and emit Stripe's event."""
    check_move("billing meter", ALLOWED, meter["status"], status)
    meter["status"] = status
    meter["updated"] = at
    meter["status_transitions"] = {"deactivated_at": at if status == "inactive" else None}
    save(ctx, meter)
    ctx.emit(EVENTS[status], meter)
    return meter
