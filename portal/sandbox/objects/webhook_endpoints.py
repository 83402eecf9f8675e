"""Webhook endpoints: the one transition function (enabled <-> disabled; Stripe sends no event)."""

from __future__ import annotations

from ..core.objects import check_move

ALLOWED = {"enabled": {"disabled"}, "disabled": {"enabled"}}


def transition(endpoint: dict, status: str) -> dict:
    """Enable or disable an endpoint; the caller saves it with its other changes."""
    check_move("webhook endpoint", ALLOWED, endpoint["status"], status)
    endpoint["status"] = status
    return endpoint
