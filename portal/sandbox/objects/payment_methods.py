"""Card PaymentMethods: minting one for a card or a test id, attaching, detaching, declines."""

from __future__ import annotations

import datetime as dt
from typing import Any

from ..core.context import Ctx
from ..core.errors import StripeError, invalid, missing
from ..core.objects import insert, new_object, save
from . import cards

ADDRESS_FIELDS = ("city", "country", "line1", "line2", "postal_code", "state")


def _billing_details(given: dict | None) -> dict:
    """Return billing_details with every key present."""
    given = given or {}
    address = {k: None for k in ADDRESS_FIELDS}
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
