"""Sandbox-only endpoints under ``/v1/sandbox/``: webhook delivery inspection and triggering.

These do not exist at Stripe; they help debug the outbox. ``GET
/v1/sandbox/webhook_deliveries?event=evt_...&endpoint=we_...`` lists deliveries with every
attempt (time, HTTP status, error). ``POST /v1/sandbox/webhook_deliveries/deliver`` runs
one delivery pass now and returns how many deliveries succeeded.
"""

from __future__ import annotations

from flask import current_app

from ..core.api import route
from ..core.context import Ctx
from ..core.lists import list_of
from ..core.params import Str
from ..core.webhooks import deliver_due, deliveries


@route("/v1/sandbox/webhook_deliveries", methods=["GET"], raw=True)
def list_deliveries(ctx: Ctx) -> dict:
    """List webhook deliveries and their attempts, newest first."""
    p = ctx.validate({"event": Str(), "endpoint": Str()})
    rows = deliveries(ctx.store.conn, p.get("event"), p.get("endpoint"))
    return list_of(rows, "/v1/sandbox/webhook_deliveries")


@route("/v1/sandbox/webhook_deliveries/deliver", methods=["POST"], raw=True, transaction=False)
def deliver_now(ctx: Ctx) -> dict:
    """Attempt every due delivery immediately."""
    ctx.validate({})
    # Runs outside the request transaction: each delivery takes its own short write locks.
    return {
        "object": "sandbox.delivery_run",
        "delivered": deliver_due(current_app._get_current_object()),
    }
