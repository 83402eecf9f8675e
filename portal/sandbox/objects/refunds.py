"""Refunds: the constructor and the one transition function of a refund's status.

Stripe's test card 4000000000005126 (docs: https://docs.stripe.com/testing#refunds) is
charged normally; a refund of it starts as ``succeeded`` and later moves to ``failed``
(``refund.failed`` and ``charge.refund.updated``), the amount going back to the balance and
off the charge's ``amount_refunded``. The sandbox makes that "later" the next piece of due
work: the refund carries a hidden ``_due_at`` the billing engine picks up.
"""

from __future__ import annotations

from ..core.context import Ctx
from ..core.objects import apply_metadata, check_move, insert, new_object, save
from . import balance

ALLOWED = {
    "pending": {"succeeded", "failed", "canceled"},
    "requires_action": {"pending", "succeeded", "failed", "canceled"},
    "succeeded": {"failed"},
}
# Stripe's failure_reason for a refund to a card that can no longer take it.
FAILURE_REASON = "expired_or_canceled_card"


def fails_later(ctx: Ctx, charge: dict) -> bool:
    """Return True when the charge was paid with a card whose refunds fail asynchronously."""
    pm = ctx.store.get(charge.get("payment_method") or "", "payment_method")
    return bool(pm) and pm["_behaviour"]["kind"] == "refund_fail"


def build_refund(ctx: Ctx, charge: dict, amount: int, params: dict) -> dict:
    """Store a succeeded refund of ``amount`` from a charge (reason and metadata from params)."""
    customer = charge.get("customer")
    refund = new_object(ctx, "re", "refund", customer=customer)
    del refund["livemode"]  # Stripe's refund objects carry no livemode flag
    txn = balance.record(
        ctx,
        amount=-amount,
        currency=charge["currency"],
        source=refund["id"],
        kind="refund",
        description="REFUND FOR CHARGE",
        customer=customer,
    )
    refund.update(
        {
            "amount": amount,
            "balance_transaction": txn["id"],
            "charge": charge["id"],
            "currency": charge["currency"],
            "customer": customer,
            "customer_account": None,
            "destination_details": {
                "card": {
                    "reference": None,
                    "reference_status": "pending",
                    "reference_type": "acquirer_reference_number",
                    "type": "refund",
                },
                "type": "card",
            },
            "metadata": {},
            "payment_intent": charge.get("payment_intent"),
            "payment_method": charge.get("payment_method"),
            "reason": params.get("reason"),
            "receipt_number": None,
            "source_transfer_reversal": None,
            "status": "succeeded",
            "transfer_reversal": None,
        }
    )
    apply_metadata(refund, params)
    if fails_later(ctx, charge):
        refund["_due_at"] = refund["created"]
    insert(ctx, refund, customer=customer)
    before = dict(charge)
    charge["amount_refunded"] += amount
    charge["refunded"] = charge["amount_refunded"] >= charge["amount_captured"]
    save(ctx, charge)
    ctx.emit("refund.created", refund, customer=customer)
    ctx.emit("charge.refunded", charge, before=before, customer=customer)
    return refund


def transition(ctx: Ctx, refund: dict, status: str) -> dict:
    """Move a refund to ``status``; a failed one gives its amount back to the charge."""
    check_move("refund", ALLOWED, refund["status"], status)
    before = dict(refund)
    refund["status"] = status
    refund.pop("_due_at", None)
    customer = refund.get("customer")
    if status == "failed":
        txn = balance.record(
            ctx,
            amount=refund["amount"],
            currency=refund["currency"],
            source=refund["id"],
            kind="refund_failure",
            description="REFUND FAILURE",
            customer=customer,
        )
        refund["failure_balance_transaction"] = txn["id"]
        refund["failure_reason"] = FAILURE_REASON
        charge = ctx.store.get(refund["charge"], "charge")
        if charge is not None:
            charge["amount_refunded"] -= refund["amount"]
            charge["refunded"] = charge["amount_refunded"] >= charge["amount_captured"]
            save(ctx, charge)
    save(ctx, refund)
    if status == "failed":
        ctx.emit("refund.failed", refund, before=before, customer=customer)
        ctx.emit("charge.refund.updated", refund, before=before, customer=customer)
    else:
        ctx.emit("refund.updated", refund, before=before, customer=customer)
    return refund
