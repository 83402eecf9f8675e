"""Card PaymentMethods: create (test ids or raw card details), attach, detach, list, update.

Passing one of Stripe's test ids (``pm_card_visa``, ``pm_card_chargeCustomerFail`` ...)
wherever a PaymentMethod id is expected creates a fresh ``pm_`` object for that test card,
as Stripe does in test mode. Raw card numbers are accepted on create because the sandbox's
own Stripe.js stand-in sends them (at Stripe only Stripe.js may).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from ..core.api import route
from ..core.context import Ctx
from ..core.errors import invalid, missing
from ..core.lists import equals, field, filtered, paginate
from ..core.objects import apply_metadata, fetch, save
from ..core.params import LIST_SPEC, Int, Meta, Str, need
from ..objects import cards
from ..objects.payment_methods import ADDRESS_FIELDS, attach, build_card, detach, resolve

ADDRESS = {k: Str() for k in ADDRESS_FIELDS}
BILLING = {"address": ADDRESS, "email": Str(), "name": Str(), "phone": Str(), "tax_id": Str()}
CREATE_SPEC = {
    "type": Str(("card",)),
    "card": {"number": Str(), "exp_month": Int(), "exp_year": Int(), "cvc": Str(), "token": Str()},
    "billing_details": BILLING,
    "metadata": Meta(),
    "allow_redisplay": Str(("always", "limited", "unspecified")),
    "customer": Str(),
    "payment_method": Str(),
}
UPDATE_SPEC = {
    "billing_details": BILLING,
    "card": {"exp_month": Int(), "exp_year": Int()},
    "metadata": Meta(),
    "allow_redisplay": Str(("always", "limited", "unspecified")),
}


@route("/v1/payment_methods", methods=["POST"], publishable=True)
def create_payment_method(ctx: Ctx) -> dict:
    """Create a card PaymentMethod from raw card details (Stripe.js) or a test id."""
    p = ctx.validate(CREATE_SPEC)
    if p.get("payment_method"):
        return resolve(ctx, p["payment_method"])
    need(p, "type")
    card = p.get("card") or {}
    if card.get("token"):
        raise invalid(
            "Card tokens are not supported by the sandbox; send card details.", "card[token]"
        )
    need(card, "number")
    today = dt.datetime.fromtimestamp(ctx.now(), dt.UTC)
    number = cards.check_card(
        card["number"],
        card.get("exp_month"),
        card.get("exp_year"),
        card.get("cvc"),
        (today.year, today.month),
    )
    year = card["exp_year"] + 2000 if card["exp_year"] < 100 else card["exp_year"]
    pm = build_card(ctx, number, card["exp_month"], year, card.get("cvc"), p.get("billing_details"))
    if "allow_redisplay" in p:
        pm["allow_redisplay"] = p["allow_redisplay"]
    apply_metadata(pm, p)
    return save(ctx, pm)


@route("/v1/payment_methods/<obj_id>", methods=["GET"], publishable=True)
def retrieve_payment_method(ctx: Ctx, obj_id: str) -> dict:
    """Retrieve a PaymentMethod."""
    ctx.validate({})
    return fetch(ctx, "payment_method", obj_id, kind="PaymentMethod")


@route("/v1/payment_methods/<obj_id>", methods=["POST"])
def update_payment_method(ctx: Ctx, obj_id: str) -> dict:
    """Update billing details, expiry or metadata of an attached PaymentMethod."""
    p = ctx.validate(UPDATE_SPEC)
    pm = fetch(ctx, "payment_method", obj_id, kind="PaymentMethod")
    if not pm.get("customer"):
        raise invalid(
            "You must save this PaymentMethod to a customer before you can update it.",
            None,
            "payment_method_unexpected_state",
        )
    before: dict[str, Any] = {
        **pm,
        "card": dict(pm["card"]),
        "billing_details": dict(pm["billing_details"]),
    }
    if "billing_details" in p:
        merged = {
            **pm["billing_details"],
            **{k: v for k, v in (p["billing_details"] or {}).items()},
        }
        merged["address"] = {
            **pm["billing_details"]["address"],
            **((p["billing_details"] or {}).get("address") or {}),
        }
        pm["billing_details"] = merged
    for key in ("exp_month", "exp_year"):
        if (p.get("card") or {}).get(key) is not None:
            pm["card"][key] = p["card"][key]
    if "allow_redisplay" in p:
        pm["allow_redisplay"] = p["allow_redisplay"]
    apply_metadata(pm, p)
    save(ctx, pm)
    if pm != before:
        ctx.emit("payment_method.updated", pm, before=before)
    return pm


@route("/v1/payment_methods/<obj_id>/attach", methods=["POST"])
def attach_payment_method(ctx: Ctx, obj_id: str) -> dict:
    """Attach a PaymentMethod to a customer."""
    p = ctx.validate({"customer": Str()})
    need(p, "customer")
    return attach(ctx, obj_id, p["customer"], param="id")


@route("/v1/payment_methods/<obj_id>/detach", methods=["POST"])
def detach_payment_method(ctx: Ctx, obj_id: str) -> dict:
    """Detach a PaymentMethod from its customer."""
    ctx.validate({})
    return detach(ctx, fetch(ctx, "payment_method", obj_id, kind="PaymentMethod"))


def _list(ctx: Ctx, p: dict, customer_id: str | None, url: str) -> dict:
    """List PaymentMethods, optionally of one customer and one type."""
    if customer_id and ctx.store.get(customer_id, "customer") is None:
        raise missing("customer", customer_id, "customer")
    filters = {"customer": equals("customer"), "type": equals(field("type"))}
    return paginate(
        ctx.store,
        p,
        url,
        obj_type="payment_method",
        **filtered({**p, "customer": customer_id}, filters),
    )


@route("/v1/payment_methods", methods=["GET"])
def list_payment_methods(ctx: Ctx) -> dict:
    """List PaymentMethods filtered by customer and type."""
    p = ctx.validate({**LIST_SPEC, "customer": Str(), "type": Str()})
    return _list(ctx, p, p.get("customer"), "/v1/payment_methods")


@route("/v1/customers/<customer_id>/payment_methods", methods=["GET"])
def list_customer_payment_methods(ctx: Ctx, customer_id: str) -> dict:
    """List a customer's PaymentMethods."""
    p = ctx.validate({**LIST_SPEC, "type": Str(), "allow_redisplay": Str()})
    return _list(ctx, p, customer_id, f"/v1/customers/{customer_id}/payment_methods")


@route("/v1/customers/<customer_id>/payment_methods/<pm_id>", methods=["GET"])
def retrieve_customer_payment_method(ctx: Ctx, customer_id: str, pm_id: str) -> dict:
    """Retrieve one of a customer's PaymentMethods."""
    ctx.validate({})
    pm = fetch(ctx, "payment_method", pm_id, kind="PaymentMethod")
    if pm.get("customer") != customer_id:
        raise missing("PaymentMethod", pm_id)
    return pm
