"""Billing credits on invoices: which grants apply to which lines, and giving them back.

docs.stripe.com/billing/subscriptions/usage-based/billing-credits:
- Credits apply only to subscription lines whose price is metered (a price with a billing
  meter), and only lines a grant's ``applicability_config`` names: ``price_type: metered``
  reaches every metered price, ``prices`` only the listed ones.
- They apply when the invoice is finalized, to each line's amount after its discounts and
  before tax (pretax credits); the line lists them in ``pretax_credit_amounts`` and the
  invoice in ``total_pretax_credit_amounts``; total and amount_due shrink by them.
- Grants are drawn in order: priority (0 first), then the earliest expires_at (grants that
  never expire last), promotional before paid, the earliest effective_at, the oldest.
  A grant counts only in the invoice's currency, once effective, and while not voided or
  expired.
- Voiding an invoice gives the applied credits back to their grants
  (docs.stripe.com/changelog/acacia/2024-12-18/billing-credits-invoice-voiding).
"""

from __future__ import annotations

from typing import Any

from ..core.context import Ctx
from ..core.events import on
from ..objects import credit_grants
from ..objects.credit_grants import GRANT, TRANSACTION
from .invoice_build import recompute

NEVER = 2**63


def _line_price(ctx: Ctx, line: dict[str, Any]) -> dict[str, Any] | None:
    details = (line.get("pricing") or {}).get("price_details") or {}
    price_id = details.get("price")
    return ctx.store.get(price_id, "price", include_deleted=True) if price_id else None


def _is_metered(price: dict[str, Any] | None) -> bool:
    recurring = (price or {}).get("recurring") or {}
    return recurring.get("usage_type") == "metered" and bool(recurring.get("meter"))


def _applies(grant: dict[str, Any], price: dict[str, Any]) -> bool:
    scope = grant["applicability_config"]["scope"]
    if scope.get("price_type") == "metered":
        return True
    return price["id"] in {entry["id"] for entry in scope.get("prices") or []}


def _order(grant: dict[str, Any]) -> tuple:
    return (
        grant["priority"],
        grant["expires_at"] if grant["expires_at"] is not None else NEVER,
        0 if grant["category"] == "promotional" else 1,
        grant["effective_at"],
        grant["created"],
    )


def usable_grants(ctx: Ctx, customer: str, currency: str, at: int) -> list[dict[str, Any]]:
    """Return the customer's grants that can pay at ``at`` in ``currency``, in drawing order."""
    grants = [
        grant
        for grant in ctx.store.select(GRANT, "customer = ?", (customer,))
        if grant["_state"] == "active"
        and grant["amount"]["monetary"]["currency"] == currency
        and grant["effective_at"] <= at
        and (grant["expires_at"] is None or grant["expires_at"] > at)
    ]
    return sorted(grants, key=_order)


def apply_to_invoice(ctx: Ctx, invoice: dict[str, Any], at: int) -> dict[str, Any]:
    """Draw the customer's credits onto the invoice's metered lines and recompute its totals."""
    grants = usable_grants(ctx, invoice["customer"], invoice["currency"], at)
    if not grants:
        return invoice
    left = {grant["id"]: credit_grants.balance(ctx, grant["id"]) for grant in grants}
    applied_any = False
    for line in invoice["_lines"]:
        price = _line_price(ctx, line)
        if price is None or not _is_metered(price) or line.get("pretax_credit_amounts"):
            continue
        owed = line["amount"] - sum(d["amount"] for d in line.get("discount_amounts") or [])
        for grant in grants:
            if owed <= 0:
                break
            if left[grant["id"]] <= 0 or not _applies(grant, price):
                continue
            take = min(owed, left[grant["id"]])
            txn = credit_grants.record(
                ctx,
                grant,
                "debit",
                "credits_applied",
                take,
                at,
                {"invoice": invoice["id"], "invoice_line_item": line["id"]},
            )
            line["pretax_credit_amounts"].append(
                {
                    "amount": take,
                    "credit_balance_transaction": txn["id"],
                    "discount": None,
                    "type": "credit_balance_transaction",
                }
            )
            left[grant["id"]] -= take
            owed -= take
            applied_any = True
    if applied_any:
        recompute(ctx.store, invoice)
        invoice["total_pretax_credit_amounts"] = [
            entry for line in invoice["_lines"] for entry in line["pretax_credit_amounts"]
        ]
    return invoice


@on("invoice.voided")
def _reinstate_on_void(ctx: Ctx, event: dict) -> None:
    """Give the credits applied to a voided invoice back to their grants."""
    invoice = event["data"]["object"]
    at = ctx.now(customer=invoice["customer"])
    for txn in ctx.store.select(
        TRANSACTION,
        "customer = ? AND json_extract(body, '$.debit.credits_applied.invoice') = ?",
        (invoice["customer"], invoice["id"]),
    ):
        grant = ctx.store.get(txn["credit_grant"], GRANT)
        if grant is None:
            continue
        credit_grants.reinstate(
            ctx,
            grant,
            txn["debit"]["amount"]["monetary"]["value"],
            at,
            {
                "invoice": invoice["id"],
                "invoice_line_item": txn["debit"]["credits_applied"]["invoice_line_item"],
            },
        )
