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
from ..core.currencies import exponent
from ..core.lists import equals, field, filtered, paginate
from ..core.objects import fetch, insert, new_object
from ..core.params import LIST_SPEC, Str
from ..core.render import renderer
from ..core.store import Store

FEE_PERCENT_BASIS_POINTS = 290
FIXED_FEE = {0: 0, 2: 30, 3: 300}
AVAILABLE_AFTER = 2 * 24 * 3600


def processing_fee(amount: int, currency: str) -> int:
    """Return the fee for a charge of ``amount`` minor units."""
    percent = (amount * FEE_PERCENT_BASIS_POINTS + 5000) // 10000
    return percent + FIXED_FEE[exponent(currency)]


def record(
    ctx: Ctx,
    *,
    amount: int,
    currency: str,
    source: str,
    kind: str,
    description: str | None,
    customer: str | None = None,
) -> dict:
    """Store a balance transaction for a charge (with fee) or a refund (negative, no fee)."""
    fee = processing_fee(amount, currency) if kind == "charge" else 0
    txn = new_object(ctx, "txn", "balance_transaction", customer=customer)
    del txn["livemode"]  # Stripe's balance transaction objects carry no livemode flag
    txn.update(
        {
            "amount": amount,
            "available_on": txn["created"] + AVAILABLE_AFTER,
            "balance_type": "payments",
            "currency": currency,
            "description": description,
            "exchange_rate": None,
            "fee": fee,
            "fee_details": [
                {
                    "amount": fee,
                    "application": None,
                    "currency": currency,
                    "description": "Stripe processing fees",
                    "type": "stripe_fee",
                }
            ]
            if fee
            else [],
            "net": amount - fee,
            "reporting_category": kind,
            "source": source,
            "status": "pending",
            "type": kind,
        }
    )
    return insert(ctx, txn, customer=customer)


@renderer("balance_transaction")
def _render(store: Store, txn: dict) -> dict:
    """Show funds as available once their availability date has passed."""
    txn["status"] = "available" if wall_time() >= txn["available_on"] else "pending"
    return txn


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
