"""Card PaymentMethods: create (test ids or raw card details), attach, detach, list, update.

Passing one of Stripe's test ids (``pm_card_visa``, ``pm_card_chargeCustomerFail`` ...)
wherever a PaymentMethod id is expected creates a fresh ``pm_`` object for that test card,
as Stripe does in test mode. Raw card numbers are accepted on create because the sandbox's
own Stripe.js stand-in sends them (at Stripe only Stripe.js may).
"""

from __future__ import annotations

from typing import Any

from ..core.api import route
from ..core.context import Ctx
from ..core.errors import StripeError, invalid, missing
from ..core.lists import equals, field, filtered, paginate
from ..core.objects import apply_metadata, fetch, insert, new_object, save
from ..core.params import LIST_SPEC, Int, Meta, Str, need
from . import cards

ADDRESS = {k: Str() for k in ("city", "country", "line1", "line2", "postal_code", "state")}
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


def _billing_details(given: dict | None) -> dict:
    """Return billing_details with every key present."""
    given = given or {}
    address = {k: None for k in ADDRESS}
    address.update(given.get("address") or {})
    return {
        "address": address,
        "email": given.get("email"),
        "name": given.get("name"),
        "phone": given.get("phone"),
        "tax_id": given.get("tax_id"),
    }


def build_card(
    ctx: Ctx,
    number: str,
    exp_month: int,
    exp_year: int,
    cvc: str | None,
    billing_details: dict | None = None,
) -> dict:
    """Store a new card PaymentMethod for a validated card number."""
    behaviour = cards.behaviour_of(number)
    brand = cards.brand_of(number)
    pm = new_object(ctx, "pm", "payment_method")
    pm.update(
        {
            "allow_redisplay": "unspecified",
            "billing_details": _billing_details(billing_details),
            "card": {
                "brand": brand,
                "checks": {
                    "address_line1_check": None,
                    "address_postal_code_check": None,
                    "cvc_check": "unchecked" if cvc else None,
                },
                "country": behaviour.country,
                "display_brand": brand,
                "exp_month": exp_month,
                "exp_year": exp_year,
                "fingerprint": cards.fingerprint(number),
                "funding": behaviour.funding,
                "generated_from": None,
                "last4": number[-4:],
                "networks": {"available": [brand], "preferred": None},
                "three_d_secure_usage": {"supported": True},
                "wallet": None,
                "regulated_status": "unregulated",
            },
            "customer": None,
            "customer_account": None,
            "metadata": {},
            "type": "card",
            "_behaviour": {
                "kind": behaviour.kind,
                "decline": behaviour.decline.__dict__ if behaviour.decline else None,
            },
            "_setup_authenticated": False,
        }
    )
    return insert(ctx, pm)


def resolve(ctx: Ctx, pm_id: str, param: str = "payment_method") -> dict:
    """Return the PaymentMethod an id names, minting a fresh one for Stripe's test ids."""
    number = cards.TEST_PAYMENT_METHODS.get(pm_id)
    if number is not None:
        year = _year(ctx) + 3
        return build_card(ctx, number, 12, year, "123")
    pm = ctx.store.get(pm_id, "payment_method")
    if pm is None:
        raise missing("PaymentMethod", pm_id, param)
    return pm


def _year(ctx: Ctx) -> int:
    """Return the current calendar year."""
    import datetime as dt

    return dt.datetime.fromtimestamp(ctx.now(), dt.UTC).year


def decline_error(
    pm: dict,
    decline: dict,
    *,
    extra: dict | None = None,
    commit: bool = False,
    param: str | None = None,
) -> StripeError:
    """Build the 402 card_error for a declined card."""
    return StripeError(
        decline["message"],
        status=402,
        type="card_error",
        code=decline["code"],
        decline_code=decline["decline_code"],
        param=param,
        extra={"payment_method": _public(pm), **(extra or {})},
        commit=commit,
    )


def last_error(pm: dict, decline: dict, **extra: Any) -> dict:
    """Return an intent's last_payment_error / last_setup_error for a declined card."""
    return {
        **extra,
        "code": decline["code"],
        "decline_code": decline["decline_code"],
        "doc_url": f"https://stripe.com/docs/error-codes/{decline['code']}",
        "message": decline["message"],
        "payment_method": _public(pm),
        "type": "card_error",
    }


def _public(pm: dict) -> dict:
    """Return a PaymentMethod without its hidden keys, for embedding in errors."""
    return {k: v for k, v in pm.items() if not k.startswith("_")}


def attach(ctx: Ctx, pm_id: str, customer_id: str, param: str = "payment_method") -> dict:
    """Attach a PaymentMethod (or a test id) to a customer, verifying the card like Stripe."""
    customer = ctx.store.get(customer_id, "customer")
    if customer is None:
        raise missing("customer", customer_id, "customer")
    pm = resolve(ctx, pm_id, param)
    if pm.get("customer") == customer_id:
        return pm
    if pm.get("customer"):
        raise invalid(
            "The payment method you provided has already been attached to a customer.",
            param,
            "payment_method_unexpected_state",
        )
    behaviour = pm["_behaviour"]
    if behaviour["kind"] == "decline":
        # Attaching runs a card check; declining cards fail here (the PaymentMethod is kept).
        raise decline_error(pm, behaviour["decline"], commit=True)
    pm["customer"] = customer_id
    save(ctx, pm, customer=customer_id)
    ctx.emit("payment_method.attached", pm, customer=customer_id)
    return pm


def detach(ctx: Ctx, pm: dict) -> dict:
    """Detach a PaymentMethod and clear it as the customer's default."""
    customer_id = pm.get("customer")
    if not customer_id:
        raise invalid(
            "The payment method you provided is not attached to a customer so "
            "detachment is impossible.",
            None,
            "payment_method_unexpected_state",
        )
    customer = ctx.store.get(customer_id, "customer")
    pm["customer"] = None
    save(ctx, pm, customer=None)
    ctx.emit(
        "payment_method.detached", pm, previous={"customer": customer_id}, customer=customer_id
    )
    if customer and customer["invoice_settings"].get("default_payment_method") == pm["id"]:
        before = {**customer, "invoice_settings": dict(customer["invoice_settings"])}
        customer["invoice_settings"]["default_payment_method"] = None
        save(ctx, customer)
        ctx.emit("customer.updated", customer, before=before)
    return pm


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
    import datetime as dt

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
