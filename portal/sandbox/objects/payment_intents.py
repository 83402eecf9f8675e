"""PaymentIntents: the constructor, the status transition, and how an attempt plays out.

An attempt charges the card, asks for 3-D Secure, or declines, per the test card. Server-side
billing code charges customers with ``create_payment`` (no exception on a decline: read the
returned intent's ``status`` and ``last_payment_error``). Every status change goes through
``transition``, which records the event Stripe sends for the new status.
"""

from __future__ import annotations

from typing import Any

from ..core.context import Ctx
from ..core.currencies import check_currency, minimum_charge
from ..core.errors import invalid, state_error
from ..core.ids import client_secret
from ..core.objects import apply, apply_metadata, check_move, fetch, insert, new_object, save
from ..core.params import need
from ..core.render import render
from . import cards, charges, payment_methods, three_d_secure

OPEN = ("requires_payment_method", "requires_confirmation", "requires_action")
ALLOWED = {
    **{
        status: {*OPEN, "processing", "requires_capture", "succeeded", "canceled"} - {status}
        for status in OPEN
    },
    "processing": {"requires_payment_method", "succeeded", "canceled"},
    "requires_capture": {"succeeded", "canceled"},
}
EVENTS = {
    # Reaching requires_payment_method again means an attempt failed.
    "requires_payment_method": "payment_intent.payment_failed",
    "requires_action": "payment_intent.requires_action",
    "requires_capture": "payment_intent.amount_capturable_updated",
    "succeeded": "payment_intent.succeeded",
    "canceled": "payment_intent.canceled",
}
CANCELABLE = (
    "requires_payment_method",
    "requires_capture",
    "requires_confirmation",
    "requires_action",
    "processing",
)


def transition(ctx: Ctx, pi: dict, status: str, **changes: Any) -> dict:
    """Move a PaymentIntent to ``status`` with ``changes``, save it and emit Stripe's event."""
    check_move("PaymentIntent", ALLOWED, pi["status"], status)
    pi.update(changes)
    pi["status"] = status
    save(ctx, pi)
    if status in EVENTS:
        ctx.emit(EVENTS[status], pi)
    return pi


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
    pm_id = None
    if p.get("payment_method"):
        pm_id = payment_methods.resolve(ctx, p["payment_method"])["id"]
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
            "payment_method": pm_id,
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
            "status": "requires_confirmation" if pm_id else "requires_payment_method",
            "transfer_data": None,
            "transfer_group": p.get("transfer_group"),
        }
    )
    apply_metadata(pi, p)
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
        action = three_d_secure.next_action(ctx, pi, return_url)
        transition(ctx, pi, "requires_action", next_action=action)
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
    # The card is saved before the intent's own event, as Stripe orders them.
    if pi.get("setup_future_usage") and pi.get("customer"):
        if pm.get("customer") != pi["customer"]:
            payment_methods.attach(ctx, pm["id"], pi["customer"])
            pm = fetch(ctx, "payment_method", pm["id"])
        if three_ds and pi["setup_future_usage"] == "off_session":
            pm["_setup_authenticated"] = True
            save(ctx, pm)
    if manual:
        transition(
            ctx, pi, "requires_capture", latest_charge=charge["id"], amount_capturable=pi["amount"]
        )
    else:
        transition(ctx, pi, "succeeded", latest_charge=charge["id"], amount_received=pi["amount"])


def _decline(ctx: Ctx, pi: dict, pm: dict, decline: dict) -> dict:
    """Record a declined attempt: failed charge, requires_payment_method, payment_failed event."""
    charge = charges.create_charge(ctx, pi, pm, decline=decline)
    transition(
        ctx,
        pi,
        "requires_payment_method",
        latest_charge=charge["id"],
        next_action=None,
        last_payment_error=payment_methods.last_error(pm, decline, charge=charge["id"]),
    )
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
    if pi["status"] not in OPEN:
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
    return transition(
        ctx,
        pi,
        "requires_payment_method",
        last_payment_error=three_d_secure.authentication_error(
            pm, "payment_intent_authentication_failure"
        ),
    )


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


def load(ctx: Ctx, obj_id: str) -> dict:
    """Return a PaymentIntent or raise 404."""
    return fetch(ctx, "payment_intent", obj_id, kind="payment_intent")


def use_payment_method(ctx: Ctx, pi: dict, pm_id: str) -> str:
    """Point an unconfirmed intent at a (possibly test-id) PaymentMethod; it awaits confirmation."""
    resolved = payment_methods.resolve(ctx, pm_id)["id"]
    transition(ctx, pi, "requires_confirmation", payment_method=resolved)
    return resolved


def capture(ctx: Ctx, pi: dict, amount: int | None) -> dict:
    """Capture an authorised PaymentIntent, fully (``amount`` None) or partially."""
    if pi["status"] != "requires_capture":
        raise state_error(
            "This PaymentIntent could not be captured because it has a status of "
            f"{pi['status']}. Only a PaymentIntent with one of the following "
            "statuses may be captured: requires_capture."
        )
    amount = pi["amount_capturable"] if amount is None else amount
    if amount > pi["amount_capturable"]:
        raise invalid(
            "The amount to capture must be less than or equal to the amount capturable "
            f"({pi['amount_capturable']}).",
            "amount_to_capture",
            "amount_too_large",
        )
    charge = fetch(ctx, "charge", pi["latest_charge"])
    charges.capture_charge(ctx, charge, amount)
    return transition(ctx, pi, "succeeded", amount_received=amount, amount_capturable=0)


def cancel(ctx: Ctx, pi: dict, reason: str | None) -> dict:
    """Cancel a PaymentIntent that has not succeeded; an authorisation is released."""
    if pi["status"] not in CANCELABLE:
        raise state_error(
            f"You cannot cancel this PaymentIntent because it has a status of {pi['status']}. "
            "Only a PaymentIntent with one of the following statuses may be canceled: "
            f"{', '.join(CANCELABLE)}."
        )
    if pi["status"] == "requires_capture":
        charges.release_authorisation(ctx, fetch(ctx, "charge", pi["latest_charge"]))
    return transition(
        ctx,
        pi,
        "canceled",
        canceled_at=ctx.now(customer=pi.get("customer")),
        cancellation_reason=reason,
        amount_capturable=0,
        next_action=None,
    )
