"""Billing credit grants and the credit balance transactions that move their balance.

docs.stripe.com/billing/subscriptions/usage-based/billing-credits and the API reference
(api/billing/credit-grant, api/billing/credit-balance-transaction):
- A grant carries a monetary amount; its balance is every credit transaction minus every
  debit transaction recorded against it.  Creating a grant records ``credits_granted``.
- A grant ends once: voided (``voided_at``; the remaining balance leaves as
  ``credits_voided``) or expired (at ``expires_at``, or now through the expire endpoint; the
  remaining balance leaves as ``credits_expired``).  Grants have no status field: the
  transition function stamps those times and records the debit.
- Each transaction emits ``billing.credit_balance_transaction.created``; a grant's changes
  emit ``billing.credit_grant.updated``.
"""

from __future__ import annotations

from typing import Any

from ..core.context import Ctx
from ..core.ids import new_id
from ..core.objects import check_move, save

GRANT = "billing.credit_grant"
TRANSACTION = "billing.credit_balance_transaction"
# A grant's lifecycle as the transition function sees it (hidden ``_state``).
ALLOWED = {"active": {"voided", "expired"}}


def monetary(value: int, currency: str) -> dict[str, Any]:
    """Return Stripe's amount shape for a monetary value."""
    return {"monetary": {"currency": currency, "value": value}, "type": "monetary"}


def due_at(grant: dict[str, Any]) -> int | None:
    """Return when the billing engine must expire the grant, or None."""
    return grant.get("expires_at") if grant.get("_state") == "active" else None


def save_grant(ctx: Ctx, grant: dict[str, Any]) -> dict[str, Any]:
    """Store a grant with its engine due time refreshed."""
    grant["_due_at"] = due_at(grant)
    return save(ctx, grant)


def balance(ctx: Ctx, grant_id: str) -> int:
    """Return what is left on a grant: its credit transactions minus its debit ones."""
    row = ctx.store.conn.execute(
        "SELECT COALESCE(SUM(CASE json_extract(body, '$.type')"
        " WHEN 'credit' THEN json_extract(body, '$.credit.amount.monetary.value')"
        " ELSE -json_extract(body, '$.debit.amount.monetary.value') END), 0) AS left"
        " FROM objects WHERE deleted = 0 AND type = ?"
        " AND json_extract(body, '$.credit_grant') = ?",
        (TRANSACTION, grant_id),
    ).fetchone()
    return int(row["left"])


def record(
    ctx: Ctx,
    grant: dict[str, Any],
    side: str,
    kind: str,
    amount: int,
    at: int,
    detail: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Record one credit balance transaction on a grant and emit its event."""
    currency = grant["amount"]["monetary"]["currency"]
    entry: dict[str, Any] = {"amount": monetary(amount, currency), "type": kind}
    if side == "credit":
        entry["credits_application_invoice_voided"] = (
            detail if kind == "credits_application_invoice_voided" else None
        )
    else:
        entry["credits_applied"] = detail if kind == "credits_applied" else None
    txn = {
        "id": new_id("cbtxn"),
        "object": TRANSACTION,
        "created": at,
        "credit": entry if side == "credit" else None,
        "credit_grant": grant["id"],
        "debit": entry if side == "debit" else None,
        "effective_at": at,
        "livemode": False,
        "test_clock": grant.get("test_clock"),
        "type": side,
    }
    ctx.store.insert(txn, customer=grant["customer"], test_clock=grant.get("test_clock"))
    ctx.emit("billing.credit_balance_transaction.created", txn)
    return txn


def create(ctx: Ctx, customer: dict[str, Any], fields: dict[str, Any], at: int) -> dict:
    """Create a grant for a customer from validated fields and record credits_granted."""
    grant = {
        "id": new_id("credgr_test"),
        "object": GRANT,
        "amount": monetary(fields["value"], fields["currency"]),
        "applicability_config": {"scope": fields["scope"]},
        "category": fields.get("category") or "paid",
        "created": at,
        "customer": customer["id"],
        "customer_account": None,
        "effective_at": fields.get("effective_at") or at,
        "expires_at": fields.get("expires_at"),
        "livemode": False,
        "metadata": dict(fields.get("metadata") or {}),
        "name": fields.get("name"),
        "priority": fields.get("priority", 50),
        "test_clock": customer.get("test_clock"),
        "updated": at,
        "voided_at": None,
        "_state": "active",
    }
    grant["_due_at"] = due_at(grant)
    ctx.store.insert(grant, customer=customer["id"], test_clock=customer.get("test_clock"))
    ctx.emit("billing.credit_grant.created", grant)
    record(ctx, grant, "credit", "credits_granted", fields["value"], grant["effective_at"])
    return grant


def transition(ctx: Ctx, grant: dict[str, Any], state: str, at: int) -> dict[str, Any]:
    """End a grant (voided or expired) at ``at``: stamp it and debit what is left."""
    check_move("credit grant", ALLOWED, grant["_state"], state)
    before = {k: v for k, v in grant.items() if not k.startswith("_")}
    grant["_state"] = state
    grant["updated"] = at
    if state == "voided":
        grant["voided_at"] = at
    elif grant.get("expires_at") is None or grant["expires_at"] > at:
        grant["expires_at"] = at
    save_grant(ctx, grant)
    ctx.emit("billing.credit_grant.updated", grant, before=before)
    left = balance(ctx, grant["id"])
    if left > 0:
        record(ctx, grant, "debit", f"credits_{state}", left, at)
    return grant


def reinstate(ctx: Ctx, grant: dict[str, Any], amount: int, at: int, detail: dict) -> None:
    """Give back credits applied to a voided invoice; a grant already ended loses them again.

    docs.stripe.com/changelog/acacia/2024-12-18/billing-credits-invoice-voiding: reinstated
    credits of a grant past its expiration expire immediately.
    """
    record(ctx, grant, "credit", "credits_application_invoice_voided", amount, at, detail)
    if grant["_state"] != "active":
        record(ctx, grant, "debit", f"credits_{grant['_state']}", amount, at)
