"""``/v1/customers/:id/balance_transactions``: credit and debit a customer's balance, and list it.

docs.stripe.com/api/customer_balance_transactions: ``amount`` is negative to credit the
customer, positive to debit; ``currency`` sets the customer's currency when it has none and
must match it otherwise.  The list is newest first, like every Stripe list.
"""

from __future__ import annotations

from ..core.api import route
from ..core.context import Ctx
from ..core.currencies import check_currency
from ..core.errors import invalid, missing, required
from ..core.lists import paginate
from ..core.objects import apply_metadata, fetch
from ..core.params import LIST_SPEC, Int, Meta, Str
from ..objects import customer_balance

KIND = "customer_balance_transaction"


def _customer(ctx: Ctx, customer_id: str) -> dict:
    return fetch(ctx, "customer", customer_id, kind="customer", param="customer")


@route("/v1/customers/<customer_id>/balance_transactions", methods=["POST"])
def create_balance_transaction(ctx: Ctx, customer_id: str) -> dict:
    """Credit (negative amount) or debit the customer's balance with an adjustment."""
    p = ctx.validate({"amount": Int(), "currency": Str(), "description": Str(), "metadata": Meta()})
    for name in ("amount", "currency"):
        if p.get(name) is None:
            raise required(name)
    customer = _customer(ctx, customer_id)
    currency = check_currency(p["currency"])
    if customer.get("currency") and customer["currency"] != currency:
        raise invalid(
            f"The currency {currency} does not match the customer's currency "
            f"{customer['currency']}.",
            "currency",
        )
    if p["amount"] == 0:
        raise invalid("The amount must not be zero.", "amount")
    txn = customer_balance.record(
        ctx,
        customer,
        p["amount"],
        currency,
        "adjustment",
        description=p.get("description"),
        metadata=p.get("metadata"),
    )
    ctx.emit("customer.updated", customer)
    return txn


def _load(ctx: Ctx, customer_id: str, txn_id: str) -> dict:
    txn = ctx.store.get(txn_id, KIND)
    if txn is None or txn["customer"] != customer_id:
        raise missing("customer balance transaction", txn_id)
    return txn


@route("/v1/customers/<customer_id>/balance_transactions/<txn_id>", methods=["GET"])
def retrieve_balance_transaction(ctx: Ctx, customer_id: str, txn_id: str) -> dict:
    """Retrieve one of the customer's balance transactions."""
    ctx.validate({})
    _customer(ctx, customer_id)
    return _load(ctx, customer_id, txn_id)


@route("/v1/customers/<customer_id>/balance_transactions/<txn_id>", methods=["POST"])
def update_balance_transaction(ctx: Ctx, customer_id: str, txn_id: str) -> dict:
    """Change a balance transaction's description or metadata (its amount is final)."""
    p = ctx.validate({"description": Str(), "metadata": Meta()})
    _customer(ctx, customer_id)
    txn = _load(ctx, customer_id, txn_id)
    if "description" in p:
        txn["description"] = p["description"]
    apply_metadata(txn, p)
    ctx.store.save(txn)
    return txn


@route("/v1/customers/<customer_id>/balance_transactions", methods=["GET"])
def list_balance_transactions(ctx: Ctx, customer_id: str) -> dict:
    """List the customer's balance transactions, newest first."""
    p = ctx.validate({**LIST_SPEC, "invoice": Str()})
    _customer(ctx, customer_id)
    where, args = "customer = ?", [customer_id]
    if p.get("invoice"):
        where += " AND json_extract(body, '$.invoice') = ?"
        args.append(p["invoice"])
    return paginate(
        ctx.store,
        p,
        f"/v1/customers/{customer_id}/balance_transactions",
        obj_type=KIND,
        where=where,
        args=args,
    )
