"""Invoice state: the engine due time and the transition functions of invoices and their payments.

An invoice moves draft -> open (finalized) -> paid, void or uncollectible; an uncollectible
invoice can still be paid or voided. ``transition`` checks the move, stamps
``status_transitions`` and records the events Stripe sends. ``save_invoice`` stamps the
hidden ``_due_at`` (when the billing engine must next act) so due work is one indexed query.
"""

from __future__ import annotations

from typing import Any

from ..core.context import Ctx
from ..core.objects import check_move

INVOICE = "invoice"


def due_at(invoice: dict[str, Any]) -> int | None:
    """Return when the engine must next act on an invoice (finalize or retry), or None."""
    if not invoice.get("auto_advance"):
        return None
    if invoice["status"] == "draft":
        return invoice.get("automatically_finalizes_at")
    if invoice["status"] == "open" and invoice["collection_method"] == "charge_automatically":
        return invoice.get("next_payment_attempt")
    return None


def save_invoice(ctx: Ctx, invoice: dict[str, Any]) -> dict[str, Any]:
    """Store an invoice with its engine due time refreshed."""
    invoice["_due_at"] = due_at(invoice)
    ctx.store.save(invoice)
    return invoice


ALLOWED = {
    "draft": {"open"},
    "open": {"paid", "void", "uncollectible"},
    "uncollectible": {"paid", "void"},
}
# For each status: the status_transitions timestamp it sets and the events Stripe sends.
ARRIVAL = {
    "open": ("finalized_at", ("invoice.finalized",)),
    "paid": ("paid_at", ("invoice.paid", "invoice.payment_succeeded")),
    "void": ("voided_at", ("invoice.voided",)),
    "uncollectible": ("marked_uncollectible_at", ("invoice.marked_uncollectible",)),
}


def transition(ctx: Ctx, invoice: dict[str, Any], status: str, at: int, **changes: Any) -> dict:
    """Move an invoice to ``status`` at ``at`` with ``changes``, save it and emit its events."""
    check_move("invoice", ALLOWED, invoice["status"], status)
    stamp, events = ARRIVAL[status]
    invoice.update(changes)
    invoice["status"] = status
    invoice["status_transitions"][stamp] = at
    save_invoice(ctx, invoice)
    for event_type in events:
        ctx.emit(event_type, invoice)
    return invoice


def payment_transition(ctx: Ctx, row: dict[str, Any], status: str, at: int, **changes: Any) -> None:
    """Move an invoice_payment (open -> paid or canceled); Stripe sends no event of its own."""
    check_move("invoice_payment", {"open": {"paid", "canceled"}}, row["status"], status)
    row.update(changes)
    row["status"] = status
    row["status_transitions"][f"{status}_at"] = at
    ctx.store.save(row)
