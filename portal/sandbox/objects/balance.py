"""Balance transactions: the processing fee and the record every charge and refund leaves."""

from __future__ import annotations

from ..core.context import Ctx
from ..core.currencies import exponent
from ..core.objects import insert, new_object

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
