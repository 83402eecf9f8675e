"""How a PaymentIntent attempt plays out: charge, 3-D Secure, or decline, per the test card.

Server-side billing code charges customers with ``create_payment`` (no exception on a
decline: read the returned intent's ``status`` and ``last_payment_error``).
"""

from __future__ import annotations

from typing import Any

from ..core.context import Ctx
from ..core.currencies import check_currency, minimum_charge
from ..core.errors import invalid, state_error
from ..core.ids import client_secret
from ..core.objects import apply, apply_metadata, fetch, insert, new_object, save
from ..core.params import need
from ..core.render import render
from . import cards, charges, payment_methods, three_d_secure


def _off_session(value: Any) -> bool:
    """Interpret ``off_session`` (a boolean or ``one_off``/``recurring``)."""
    if value in ("true", True, "one_off", "recurring"):
        return True
    if value in ("false", False, None):
        return False
    raise invalid(f"Invalid off_session: {value}", "off_session")


def new_intent(ctx: Ctx, p: dict) -> dict:
    """Store a PaymentIntent in ``requires_payment_method`` or ``requires_confirmation``."""
    need(p, "amount", "currency")
    currency = check_currency(p["currency"])
    if p["amount"] < minimum_charge(currency):
        raise invalid(
            "Amount must be at least the minimum charge amount for the currency.",
            "amount",
            "amount_too_small",
        )
    customer = p.get("customer")
    if customer:
        fetch(ctx, "customer", customer, kind="customer", param="customer")
    pi = new_object(ctx, "pi", "payment_intent", customer=customer)
    pi.update(
        {
            "amount": p["amount"],
            "amount_capturable": 0,
            "amount_details": {"tip": {}},
            "amount_received": 0,
            "application": None,
            "application_fee_amount": None,
            "automatic_payment_methods": p.get("automatic_payment_methods")
            and {
                "enabled": bool(p["automatic_payment_methods"].get("enabled")),
                "allow_redirects": p["automatic_payment_methods"].get("allow_redirects", "always"),
            },
            "canceled_at": None,
            "cancellation_reason": None,
            "capture_method": p.get("capture_method") or "automatic_async",
            "client_secret": client_secret(pi["id"]),
            "confirmation_method": p.get("confirmation_method") or "automatic",
            "currency": currency,
            "customer": customer,
            "customer_account": None,
            "description": p.get("description"),
            "excluded_payment_method_types": None,
            "last_payment_error": None,
            "latest_charge": None,
            "managed_payments": None,
            "metadata": {},
            "next_action": None,
            "on_behalf_of": None,
            "payment_method": None,
            "payment_method_configuration_details": None,
            "payment_method_options": {
                "card": {
                    "installments": None,
                    "mandate_options": None,
                    "network": None,
                    "request_three_d_secure": "automatic",
                }
            },
            "payment_method_types": p.get("payment_method_types") or ["card"],
            "processing": None,
            "receipt_email": p.get("receipt_email"),
            "review": None,
            "setup_future_usage": p.get("setup_future_usage"),
            "shipping": p.get("shipping"),
            "source": None,
            "statement_descriptor": p.get("statement_descriptor"),
            "statement_descriptor_suffix": p.get("statement_descriptor_suffix"),
            "status": "requires_payment_method",
            "transfer_data": None,
            "transfer_group": p.get("transfer_group"),
        }
    )
    apply_metadata(pi, p)
    if p.get("payment_method"):
        pi["payment_method"] = payment_methods.resolve(ctx, p["payment_method"])["id"]
        pi["status"] = "requires_confirmation"
    insert(ctx, pi, customer=customer)
    ctx.emit("payment_intent.created", pi)
    return pi


def attempt(
    ctx: Ctx,
    pi: dict,
    *,
    off_session: bool,
    return_url: str | None = None,
    error_on_requires_action: bool = False,
) -> dict | None:
    """Run one confirmation: charge, ask for 3-D Secure, or decline. Return the decline, if any."""
    pm = fetch(ctx, "payment_method", pi["payment_method"], kind="PaymentMethod")
    behaviour = pm["_behaviour"]
    kind = behaviour["kind"]
    pi.update(last_payment_error=None, next_action=None)
    if kind in ("decline", "charge_fail"):
        return _decline(ctx, pi, pm, behaviour["decline"])
    needs_auth = kind == "auth_always" or (
        kind == "auth_setup" and not (off_session and pm.get("_setup_authenticated"))
    )
    if needs_auth:
        if off_session or error_on_requires_action:
            return _decline(ctx, pi, pm, cards.AUTH_REQUIRED.__dict__)
        pi["status"] = "requires_action"
        pi["next_action"] = three_d_secure.next_action(ctx, pi, return_url)
        save(ctx, pi)
        ctx.emit("payment_intent.requires_action", pi)
        return None
    _succeed(ctx, pi, pm, None)
    return None


def _three_d_secure_result() -> dict:
    """Return payment_method_details.card.three_d_secure for an authenticated payment."""
    return {
        "authentication_flow": "challenge",
        "electronic_commerce_indicator": "05",
        "exemption_indicator": None,
        "result": "authenticated",
        "result_reason": None,
        "transaction_id": None,
        "version": "2.2.0",
    }


def _succeed(ctx: Ctx, pi: dict, pm: dict, three_ds: dict | None) -> None:
    """Charge the card and move the intent to succeeded (or requires_capture)."""
    manual = pi["capture_method"] == "manual"
    charge = charges.create_charge(ctx, pi, pm, capture=not manual, three_d_secure=three_ds)
    pi["latest_charge"] = charge["id"]
    if manual:
        pi.update(status="requires_capture", amount_capturable=pi["amount"])
    else:
        pi.update(status="succeeded", amount_received=pi["amount"])
    if pi.get("setup_future_usage") and pi.get("customer"):
        if pm.get("customer") != pi["customer"]:
            payment_methods.attach(ctx, pm["id"], pi["customer"])
            pm = fetch(ctx, "payment_method", pm["id"])
        if three_ds and pi["setup_future_usage"] == "off_session":
            pm["_setup_authenticated"] = True
            save(ctx, pm)
    save(ctx, pi)
    ctx.emit(
        "payment_intent.amount_capturable_updated" if manual else "payment_intent.succeeded", pi
    )


def _decline(ctx: Ctx, pi: dict, pm: dict, decline: dict) -> dict:
    """Record a declined attempt: failed charge, requires_payment_method, payment_failed event."""
    charge = charges.create_charge(ctx, pi, pm, decline=decline)
    pi.update(status="requires_payment_method", latest_charge=charge["id"], next_action=None)
    pi["last_payment_error"] = payment_methods.last_error(pm, decline, charge=charge["id"])
    save(ctx, pi)
    ctx.emit("payment_intent.payment_failed", pi)
    return decline


def _raise_decline(ctx: Ctx, pi: dict, decline: dict) -> None:
    """Answer 402 with the failed intent while keeping the attempt's records."""
    pm = fetch(ctx, "payment_method", pi["payment_method"])
    raise payment_methods.decline_error(
        pm,
        decline,
        commit=True,
        extra={"payment_intent": render(ctx.store, pi), "charge": pi["latest_charge"]},
    )


def confirm(ctx: Ctx, pi: dict, p: dict) -> dict:
    """Confirm a PaymentIntent with the given confirm parameters; raise 402 on decline."""
    if pi["status"] not in ("requires_payment_method", "requires_confirmation", "requires_action"):
        raise state_error(
            f"You cannot confirm this PaymentIntent because it has a status of {pi['status']}."
        )
    if p.get("payment_method"):
        pi["payment_method"] = payment_methods.resolve(ctx, p["payment_method"])["id"]
    if not pi.get("payment_method"):
        raise invalid(
            "You cannot confirm this PaymentIntent because it's missing a payment method. You "
            "can either update the PaymentIntent with a payment method and then confirm it "
            "again, or confirm it again directly with a payment method.",
            "payment_method",
            "payment_intent_unexpected_state",
        )
    owner = (ctx.store.get(pi["payment_method"], "payment_method") or {}).get("customer")
    if owner and pi.get("customer") and owner != pi["customer"]:
        raise invalid(
            f"The provided PaymentMethod {pi['payment_method']} belongs to another Customer "
            f"({owner}); it cannot be used for a PaymentIntent of Customer {pi['customer']}.",
            "payment_method",
        )
    apply(pi, p, ("setup_future_usage", "receipt_email", "capture_method", "shipping"))
    decline = attempt(
        ctx,
        pi,
        off_session=_off_session(p.get("off_session")),
        return_url=p.get("return_url"),
        error_on_requires_action=bool(p.get("error_on_requires_action")),
    )
    if decline:
        _raise_decline(ctx, pi, decline)
    return pi


def after_authentication(ctx: Ctx, pi: dict, *, passed: bool) -> dict:
    """Continue a PaymentIntent after its 3-D Secure challenge passed or failed."""
    pm = fetch(ctx, "payment_method", pi["payment_method"], kind="PaymentMethod")
    pi["next_action"] = None
    if passed:
        _succeed(ctx, pi, pm, _three_d_secure_result())
        return pi
    pi["status"] = "requires_payment_method"
    pi["last_payment_error"] = three_d_secure.authentication_error(
        pm, "payment_intent_authentication_failure"
    )
    save(ctx, pi)
    ctx.emit("payment_intent.payment_failed", pi)
    return pi


def create_payment(
    ctx: Ctx,
    *,
    amount: int,
    currency: str,
    customer: str | None,
    payment_method: str | None,
    off_session: bool = True,
    description: str | None = None,
    metadata: dict | None = None,
    confirm: bool = True,
    return_url: str | None = None,
) -> dict:
    """Create (and by default confirm) a PaymentIntent for server code; never raises on decline."""
    params: dict[str, Any] = {
        "amount": amount,
        "currency": currency,
        "customer": customer,
        "payment_method": payment_method,
        "description": description,
        "metadata": metadata or {},
    }
    pi = new_intent(ctx, {k: v for k, v in params.items() if v is not None})
    if confirm and pi.get("payment_method"):
        attempt(ctx, pi, off_session=off_session, return_url=return_url)
    return pi
