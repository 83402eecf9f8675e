"""Balance transactions with a Stripe-like processing fee.

Fee rule (the sandbox's fixed price list, after Stripe's standard US card pricing):
2.9 % of the amount, rounded half up to the minor unit, plus a fixed part of 30 minor
units for two-decimal currencies (0.30 USD), 0 for zero-decimal currencies and 300 for
three-decimal ones. Refunds do not return the fee. Funds become ``available`` two days
after the charge.
"""

from __future__ import annotations

from ..core.api import route
from ..core.clock import wall_time
from ..core.context import Ctx
from ..core.lists import equals, field, filtered, paginate
from ..core.objects import fetch
from ..core.params import LIST_SPEC, Str
from ..core.render import renderer
from ..core.store import Store


@renderer("balance_transaction")
def _render(store: Store, txn: dict) -> dict:
    """Show funds as available once their availability date has passed."""
    # Computed on output, never stored: funds become available by the passing of time alone.
    return {**txn, "status": "available" if wall_time() >= txn["available_on"] else "pending"}


@route("/v1/balance_transactions/<obj_id>", methods=["GET"])
def retrieve_balance_transaction(ctx: Ctx, obj_id: str) -> dict:
    """Retrieve a balance transaction."""
    ctx.validate({})
    return fetch(ctx, "balance_transaction", obj_id, kind="balance transaction")


@route("/v1/balance_transactions", methods=["GET"])
def list_balance_transactions(ctx: Ctx) -> dict:
    """List balance transactions, filtered by type, source or currency."""
    p = ctx.validate(
        {**LIST_SPEC, "type": Str(), "source": Str(), "currency": Str(), "payout": Str()}
    )
    filters = {key: equals(field(key)) for key in ("type", "source", "currency")}
    return paginate(
        ctx.store,
        p,
        "/v1/balance_transactions",
        obj_type="balance_transaction",
        **filtered(p, filters),
    )
