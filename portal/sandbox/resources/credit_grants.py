"""Billing credits: credit grants, the credit balance summary and credit balance transactions.

Follows docs.stripe.com/api/billing/credit-grant, api/billing/credit-balance-summary and
api/billing/credit-balance-transaction.  ``customer_account`` (Accounts v2 customers) is not
modelled and answers a 400 saying so.
"""

from __future__ import annotations

from typing import Any

from ..core.api import route
from ..core.context import Ctx
from ..core.currencies import check_currency
from ..core.errors import invalid, missing
from ..core.lists import equals, field, filtered, paginate
from ..core.objects import apply_metadata, fetch
from ..core.params import LIST_SPEC, Anything, Int, List, Meta, Str, need
from ..objects import credit_grants
from ..objects.credit_grants import GRANT, TRANSACTION, monetary

SCOPE_SPEC = {"price_type": Str(("metered",)), "prices": List({"id": Str()})}
CREATE_SPEC = {
    "amount": {
        "monetary": {"currency": Str(), "value": Int(minimum=1)},
        "type": Str(("monetary",)),
    },
    "applicability_config": {"scope": SCOPE_SPEC},
    "category": Str(("paid", "promotional")),
    "customer": Str(),
    "customer_account": Anything(),
    "effective_at": Int(),
    "expires_at": Int(),
    "metadata": Meta(),
    "name": Str(),
    "priority": Int(minimum=0),
}
MAX_PRICES = 20
# These lists page by cursor only (no created filter, unlike most lists).
PAGE_SPEC = {key: spec for key, spec in LIST_SPEC.items() if key != "created"}


def _unsupported(p: dict[str, Any], *names: str) -> None:
    for name in names:
        if name in p:
            raise invalid(f"The sandbox does not support {name} yet.", name)


def _load(ctx: Ctx, grant_id: str) -> dict:
    return fetch(ctx, GRANT, grant_id, kind="credit grant")


def _scope(ctx: Ctx, scope: dict[str, Any] | None, param: str) -> dict[str, Any]:
    """Check an applicability scope: price_type metered, or up to 20 metered prices."""
    scope = scope or {}
    if ("price_type" in scope) == ("prices" in scope):
        raise invalid(f"You must pass exactly one of {param}[price_type] or {param}[prices].",
                      param)
    if "price_type" in scope:
        return {"price_type": scope["price_type"]}
    prices = scope["prices"] or []
    if not prices or len(prices) > MAX_PRICES:
        raise invalid(f"{param}[prices] must list 1 to {MAX_PRICES} prices.", f"{param}[prices]")
    for i, entry in enumerate(prices):
        name = f"{param}[prices][{i}][id]"
        price = ctx.store.get(entry.get("id") or "", "price")
        if price is None:
            raise missing("price", entry.get("id") or "", name)
        recurring = price.get("recurring") or {}
        if recurring.get("usage_type") != "metered" or not recurring.get("meter"):
            raise invalid(f"Price {price['id']} is not a metered price with a billing meter; "
                          "credit grants only apply to metered prices.", name)
    return {"prices": [{"id": entry["id"]} for entry in prices]}


@route("/v1/billing/credit_grants", methods=["POST"])
def create_credit_grant(ctx: Ctx) -> dict:
    """Create a credit grant (docs: api/billing/credit-grant/create)."""
    p = ctx.validate(CREATE_SPEC)
    _unsupported(p, "customer_account")
    need(p, "customer", "amount", "applicability_config")
    amount = p["amount"]
    if amount.get("type") != "monetary":
        raise invalid("Missing required param: amount[type].", "amount[type]")
    money = amount.get("monetary") or {}
    need(money, "currency", "value")
    currency = check_currency(str(money["currency"]).lower(), "amount[monetary][currency]")
    customer = ctx.store.get(p["customer"], "customer")
    if customer is None:
        raise missing("customer", p["customer"], "customer")
    scope = _scope(ctx, (p["applicability_config"] or {}).get("scope"),
                   "applicability_config[scope]")
    if "priority" in p and p["priority"] > 100:
        raise invalid("priority must be between 0 and 100.", "priority")
    at = ctx.now(customer=customer["id"])
    effective_at = p.get("effective_at") or at
    if p.get("expires_at") is not None and p["expires_at"] <= max(effective_at, at):
        raise invalid("expires_at must be after effective_at and in the future.", "expires_at")
    return credit_grants.create(
        ctx,
        customer,
        {
            "value": money["value"],
            "currency": currency,
            "scope": scope,
            "category": p.get("category"),
            "effective_at": effective_at,
            "expires_at": p.get("expires_at"),
            "metadata": p.get("metadata"),
            "name": p.get("name"),
            "priority": p.get("priority", 50),
        },
        at,
    )


@route("/v1/billing/credit_grants/<obj_id>", methods=["GET"])
def retrieve_credit_grant(ctx: Ctx, obj_id: str) -> dict:
    """Retrieve a credit grant."""
    ctx.validate({})
    return _load(ctx, obj_id)


@route("/v1/billing/credit_grants", methods=["GET"])
def list_credit_grants(ctx: Ctx) -> dict:
    """List credit grants, newest first, optionally for one customer."""
    p = ctx.validate({**PAGE_SPEC, "customer": Str(), "customer_account": Anything()})
    _unsupported(p, "customer_account")
    return paginate(ctx.store, p, "/v1/billing/credit_grants", obj_type=GRANT,
                    **filtered(p, {"customer": equals("customer")}))


@route("/v1/billing/credit_grants/<obj_id>", methods=["POST"])
def update_credit_grant(ctx: Ctx, obj_id: str) -> dict:
    """Update a grant's metadata or expires_at ('' removes the expiry)."""
    p = ctx.validate({"expires_at": Int(), "metadata": Meta()})
    grant = _load(ctx, obj_id)
    before = {k: v for k, v in grant.items() if not k.startswith("_")}
    if "expires_at" in p:
        if grant["_state"] != "active":
            raise invalid(f"The credit grant {obj_id} has already been {grant['_state']}.")
        at = ctx.now(customer=grant["customer"])
        if p["expires_at"] is not None and p["expires_at"] <= max(grant["effective_at"], at):
            raise invalid("expires_at must be after effective_at and in the future.",
                          "expires_at")
        grant["expires_at"] = p["expires_at"]
    apply_metadata(grant, p)
    if {k: v for k, v in grant.items() if not k.startswith("_")} != before:
        grant["updated"] = ctx.now(customer=grant["customer"])
        credit_grants.save_grant(ctx, grant)
        ctx.emit("billing.credit_grant.updated", grant, before=before)
    return grant


def _end(ctx: Ctx, obj_id: str, state: str) -> dict:
    grant = _load(ctx, obj_id)
    if grant["_state"] != "active":
        raise invalid(f"The credit grant {obj_id} has already been {grant['_state']}.")
    return credit_grants.transition(ctx, grant, state, ctx.now(customer=grant["customer"]))


@route("/v1/billing/credit_grants/<obj_id>/expire", methods=["POST"])
def expire_credit_grant(ctx: Ctx, obj_id: str) -> dict:
    """Expire a grant now: what is left on it is debited (credits_expired)."""
    ctx.validate({})
    return _end(ctx, obj_id, "expired")


@route("/v1/billing/credit_grants/<obj_id>/void", methods=["POST"])
def void_credit_grant(ctx: Ctx, obj_id: str) -> dict:
    """Void a grant: what is left on it is debited (credits_voided)."""
    ctx.validate({})
    return _end(ctx, obj_id, "voided")


def _matches(grant: dict[str, Any], flt: dict[str, Any]) -> bool:
    if flt["type"] == "credit_grant":
        return grant["id"] == flt["credit_grant"]
    wanted = flt["scope"]
    scope = grant["applicability_config"]["scope"]
    if "price_type" in wanted or scope.get("price_type") == "metered":
        return True
    return bool({e["id"] for e in wanted["prices"]} & {e["id"] for e in scope["prices"]})


@route("/v1/billing/credit_balance_summary", methods=["GET"])
def retrieve_credit_balance_summary(ctx: Ctx) -> dict:
    """Return a customer's credit balances per currency (docs: api/billing/credit-balance-summary).

    ledger_balance counts every committed transaction; available_balance leaves out grants
    not yet effective (expiries are committed by the billing engine when they fall due).
    """
    p = ctx.validate({
        "customer": Str(),
        "customer_account": Anything(),
        "filter": {
            "type": Str(("applicability_scope", "credit_grant")),
            "credit_grant": Str(),
            "applicability_scope": SCOPE_SPEC,
        },
    })
    _unsupported(p, "customer_account")
    need(p, "customer", "filter")
    flt = p["filter"] or {}
    need(flt, "type")
    if flt["type"] == "credit_grant":
        if not flt.get("credit_grant"):
            raise invalid("Missing required param: filter[credit_grant].", "filter[credit_grant]")
        _load(ctx, flt["credit_grant"])
    else:
        flt["scope"] = _scope(ctx, flt.get("applicability_scope"), "filter[applicability_scope]")
    customer = ctx.store.get(p["customer"], "customer")
    if customer is None:
        raise missing("customer", p["customer"], "customer")
    at = ctx.now(customer=customer["id"])
    totals: dict[str, list[int]] = {}
    for grant in ctx.store.select(GRANT, "customer = ?", (customer["id"],),
                                  order="created, seq"):
        if not _matches(grant, flt):
            continue
        currency = grant["amount"]["monetary"]["currency"]
        left = credit_grants.balance(ctx, grant["id"])
        entry = totals.setdefault(currency, [0, 0])
        entry[0] += left if grant["effective_at"] <= at else 0
        entry[1] += left
    return {
        "object": "billing.credit_balance_summary",
        "balances": [
            {"available_balance": monetary(available, currency),
             "ledger_balance": monetary(ledger, currency)}
            for currency, (available, ledger) in totals.items()
        ],
        "customer": customer["id"],
        "customer_account": None,
        "livemode": False,
    }


@route("/v1/billing/credit_balance_transactions", methods=["GET"])
def list_credit_balance_transactions(ctx: Ctx) -> dict:
    """List a customer's credit balance transactions, newest first, optionally of one grant."""
    p = ctx.validate({**PAGE_SPEC, "customer": Str(), "credit_grant": Str(),
                      "customer_account": Anything()})
    _unsupported(p, "customer_account")
    need(p, "customer")
    return paginate(
        ctx.store, p, "/v1/billing/credit_balance_transactions", obj_type=TRANSACTION,
        **filtered(p, {"customer": equals("customer"),
                       "credit_grant": equals(field("credit_grant"))}),
    )


@route("/v1/billing/credit_balance_transactions/<obj_id>", methods=["GET"])
def retrieve_credit_balance_transaction(ctx: Ctx, obj_id: str) -> dict:
    """Retrieve a credit balance transaction."""
    ctx.validate({})
    return fetch(ctx, TRANSACTION, obj_id, kind="credit balance transaction")
