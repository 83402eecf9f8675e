"""Checkout Sessions: the one transition function (open -> complete or expired)."""

from __future__ import annotations

from typing import Any

from ..core.context import Ctx
from ..core.objects import check_move, save

ALLOWED = {"open": {"complete", "expired"}}
EVENTS = {"complete": "checkout.session.completed", "expired": "checkout.session.expired"}


def transition(ctx: Ctx, session: dict, status: str, **changes: Any) -> dict:
    """Close a session (its ``url`` goes away), save it and emit Stripe's event for the end."""
    check_move("Checkout Session", ALLOWED, session["status"], status)
    session.update(changes)
    session["status"] = status
    session["url"] = None
    save(ctx, session)
    ctx.emit(EVENTS[status], session)
    return session
