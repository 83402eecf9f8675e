"""Customer balance transactions: every change of a customer's credit balance, with its reason.

docs.stripe.com/billing/customer/balance: a negative balance is credit the customer has, a
positive one an amount owed; both apply to the next finalized invoice.  Each change leaves a
``customer_balance_transaction`` (``adjustment`` when made through the API,
``applied_to_invoice`` when an invoice takes from or adds to the balance).
"""

from __future__ import annotations

from typing import Any

from ..core.context import Ctx
from ..core.objects import new_object


def record(
    ctx: Ctx,
    customer: dict[str, Any],
    amount: int,
    currency: str,
    kind: str,
    *,
    description: str | None = None,
    invoice: str | None = None,
    metadata: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Move the customer's balance by ``amount`` and store the transaction that says why."""
    txn = new_object(ctx, "cbtxn", "customer_balance_transaction", customer=customer["id"])
    customer["balance"] = int(customer.get("balance") or 0) + amount
    if not customer.get("currency"):
        customer["currency"] = currency
    txn.update(
        {
            "amount": amount,
            "checkout_session": None,
            "credit_note": None,
            "currency": currency,
            "customer": customer["id"],
            "customer_account": None,
            "description": description,
            "ending_balance": customer["balance"],
            "invoice": invoice,
            "metadata": dict(metadata or {}),
            "type": kind,
        }
    )
    ctx.store.insert(txn, customer=customer["id"], test_clock=customer.get("test_clock"))
    ctx.store.save(customer)
    return txn
