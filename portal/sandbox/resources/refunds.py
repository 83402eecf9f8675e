"""Refunds: full or partial, several per charge, never more than what is left to refund."""

from __future__ import annotations

from ..core.api import route
from ..core.context import Ctx
from ..core.currencies import exponent
from ..core.errors import invalid
from ..core.lists import equals, field, filtered, paginate
from ..core.objects import apply_metadata, fetch, save
from ..core.params import LIST_SPEC, Int, Meta, Str
from ..objects import refunds

SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£", "jpy": "¥", "cad": "CA$", "aud": "A$"}
CREATE_SPEC = {
    "charge": Str(),
    "payment_intent": Str(),
    "amount": Int(minimum=1),
    "reason": Str(("duplicate", "fraudulent", "requested_by_customer")),
    "metadata": Meta(),
    "instructions_email": Str(),
    "refund_application_fee": Str(),
    "reverse_transfer": Str(),
    "origin": Str(("customer_balance",)),
    "currency": Str(),
    "customer": Str(),
}


def money(amount: int, currency: str) -> str:
    """Format an amount for an error message, e.g. ``$20.00`` or ``¥500``."""
    exp = exponent(currency)
    units = f"{amount / 10**exp:.{exp}f}" if exp else str(amount)
    symbol = SYMBOLS.get(currency)
    return f"{symbol}{units}" if symbol else f"{units} {currency.upper()}"


def refundable_amount(charge: dict) -> int:
    """Return what can still be refunded on a charge."""
    return charge["amount_captured"] - charge["amount_refunded"]


def _target_charge(ctx: Ctx, p: dict) -> dict:
    """Find the charge a refund request names, directly or through its PaymentIntent."""
    if p.get("charge") and p.get("payment_intent"):
        raise invalid("You cannot specify both `charge` and `payment_intent`.", "payment_intent")
    if p.get("charge"):
        return fetch(ctx, "charge", p["charge"], kind="charge", param="charge")
    if p.get("payment_intent"):
        pi = fetch(
            ctx,
            "payment_intent",
            p["payment_intent"],
            kind="payment_intent",
            param="payment_intent",
        )
        if pi["status"] != "succeeded" or not pi.get("latest_charge"):
            raise invalid(
                f"This PaymentIntent ({pi['id']}) does not have a successful charge to refund.",
                "payment_intent",
                "charge_not_refundable",
            )
        return fetch(ctx, "charge", pi["latest_charge"], kind="charge")
    raise invalid(
        "One of the following params should be provided for this request: "
        "payment_intent or charge.",
        None,
        "parameter_missing",
    )


@route("/v1/refunds", methods=["POST"])
def create_refund(ctx: Ctx) -> dict:
    """Refund all or part of a charge's captured, not yet refunded amount."""
    p = ctx.validate(CREATE_SPEC)
    charge = _target_charge(ctx, p)
    if charge["status"] != "succeeded" or not charge["captured"]:
        raise invalid(
            f"Charge {charge['id']} has not been captured and cannot be refunded.",
            "charge",
            "charge_not_refundable",
        )
    left = refundable_amount(charge)
    if left <= 0:
        raise invalid(
            f"Charge {charge['id']} has already been refunded.", "charge", "charge_already_refunded"
        )
    amount = p.get("amount", left)
    if amount > left:
        raise invalid(
            f"Refund amount ({money(amount, charge['currency'])}) is greater than unrefunded "
            f"amount on charge ({money(left, charge['currency'])})",
            "amount",
            "amount_too_large",
        )
    refund = refunds.build_refund(ctx, charge, amount, p)
    return refund


@route("/v1/refunds/<obj_id>", methods=["GET"])
def retrieve_refund(ctx: Ctx, obj_id: str) -> dict:
    """Retrieve a refund."""
    ctx.validate({})
    return fetch(ctx, "refund", obj_id, kind="refund")


@route("/v1/refunds/<obj_id>", methods=["POST"])
def update_refund(ctx: Ctx, obj_id: str) -> dict:
    """Update a refund's metadata."""
    p = ctx.validate({"metadata": Meta()})
    refund = fetch(ctx, "refund", obj_id, kind="refund")
    before = dict(refund)
    apply_metadata(refund, p)
    save(ctx, refund)
    if refund != before:
        ctx.emit("refund.updated", refund, before=before)
    return refund


@route("/v1/refunds", methods=["GET"])
def list_refunds(ctx: Ctx) -> dict:
    """List refunds filtered by charge or payment intent."""
    p = ctx.validate({**LIST_SPEC, "charge": Str(), "payment_intent": Str()})
    filters = {key: equals(field(key)) for key in ("charge", "payment_intent")}
    return paginate(ctx.store, p, "/v1/refunds", obj_type="refund", **filtered(p, filters))
