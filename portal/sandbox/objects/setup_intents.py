"""SetupIntents: save a card for later off-session payments, with 3-D Secure when it asks.

Every status change goes through ``transition``, which records Stripe's event for it.
"""

from __future__ import annotations

from typing import Any

from ..core.context import Ctx
from ..core.errors import invalid, state_error
from ..core.ids import client_secret
from ..core.objects import apply_metadata, check_move, fetch, insert, new_object, save
from ..core.render import render
from . import payment_methods, three_d_secure

CANCELABLE = ("requires_payment_method", "requires_confirmation", "requires_action")
ALLOWED = {
    status: {*CANCELABLE, "processing", "succeeded", "canceled"} - {status} for status in CANCELABLE
}
ALLOWED["processing"] = {"requires_payment_method", "succeeded", "canceled"}
EVENTS = {
    # Reaching requires_payment_method again means the setup attempt failed.
    "requires_payment_method": "setup_intent.setup_failed",
    "requires_action": "setup_intent.requires_action",
    "succeeded": "setup_intent.succeeded",
    "canceled": "setup_intent.canceled",
}


def transition(ctx: Ctx, si: dict, status: str, **changes: Any) -> dict:
    """Move a SetupIntent to ``status`` with ``changes``, save it and emit Stripe's event."""
    check_move("SetupIntent", ALLOWED, si["status"], status)
    si.update(changes)
    si["status"] = status
    save(ctx, si)
    if status in EVENTS:
        ctx.emit(EVENTS[status], si)
    return si


def new_setup_intent(ctx: Ctx, p: dict) -> dict:
    """Store a SetupIntent from validated create parameters and emit setup_intent.created."""
    customer = p.get("customer")
    if customer:
        fetch(ctx, "customer", customer, kind="customer", param="customer")
    si = new_object(ctx, "seti", "setup_intent", customer=customer)
    pm_id = None
    if p.get("payment_method"):
        pm_id = payment_methods.resolve(ctx, p["payment_method"])["id"]
    si.update(
        {
            "application": None,
            "automatic_payment_methods": p.get("automatic_payment_methods")
            and {
                "enabled": bool(p["automatic_payment_methods"].get("enabled")),
                "allow_redirects": p["automatic_payment_methods"].get("allow_redirects", "always"),
            },
            "cancellation_reason": None,
            "client_secret": client_secret(si["id"]),
            "customer": customer,
            "description": p.get("description"),
            "excluded_payment_method_types": None,
            "flow_directions": p.get("flow_directions"),
            "last_setup_error": None,
            "latest_attempt": None,
            "mandate": None,
            "metadata": {},
            "next_action": None,
            "on_behalf_of": None,
            "payment_method": pm_id,
            "payment_method_configuration_details": None,
            "payment_method_options": {
                "card": {
                    "mandate_options": None,
                    "network": None,
                    "request_three_d_secure": "automatic",
                }
            },
            "payment_method_types": p.get("payment_method_types") or ["card"],
            "single_use_mandate": None,
            "status": "requires_confirmation" if pm_id else "requires_payment_method",
            "usage": p.get("usage") or "off_session",
        }
    )
    apply_metadata(si, p)
    insert(ctx, si, customer=customer)
    ctx.emit("setup_intent.created", si)
    return si


def use_payment_method(ctx: Ctx, si: dict, pm_id: str) -> str:
    """Point a SetupIntent at a (possibly test-id) PaymentMethod; it awaits confirmation."""
    resolved = payment_methods.resolve(ctx, pm_id)["id"]
    transition(ctx, si, "requires_confirmation", payment_method=resolved)
    return resolved


def cancel(ctx: Ctx, si: dict, reason: str | None) -> dict:
    """Cancel a SetupIntent that has not succeeded."""
    if si["status"] not in CANCELABLE:
        raise state_error(
            f"You cannot cancel this SetupIntent because it has a status of {si['status']}. "
            f"Only a SetupIntent with one of the following statuses may be canceled: "
            f"{', '.join(CANCELABLE)}.",
            "setup_intent_unexpected_state",
        )
    return transition(ctx, si, "canceled", cancellation_reason=reason, next_action=None)


def load(ctx: Ctx, obj_id: str) -> dict:
    """Return a SetupIntent or raise 404."""
    return fetch(ctx, "setup_intent", obj_id, kind="setup_intent")


def _succeed(ctx: Ctx, si: dict, pm: dict, authenticated: bool) -> dict:
    """Attach the card to the customer and mark the intent succeeded."""
    if authenticated:
        pm["_setup_authenticated"] = True
        save(ctx, pm)
    if si.get("customer") and pm.get("customer") != si["customer"]:
        payment_methods.attach(ctx, pm["id"], si["customer"])
    return transition(ctx, si, "succeeded", next_action=None, last_setup_error=None)


def confirm(ctx: Ctx, si: dict, p: dict) -> dict:
    """Confirm a SetupIntent: succeed, ask for 3-D Secure, or fail with the card's decline (402)."""
    if si["status"] not in CANCELABLE:
        raise state_error(
            f"You cannot confirm this SetupIntent because it has a status of {si['status']}.",
            "setup_intent_unexpected_state",
        )
    if p.get("payment_method"):
        si["payment_method"] = payment_methods.resolve(ctx, p["payment_method"])["id"]
    if not si.get("payment_method"):
        raise invalid(
            "You cannot confirm this SetupIntent because it's missing a payment method.",
            "payment_method",
            "setup_intent_unexpected_state",
        )
    pm = fetch(ctx, "payment_method", si["payment_method"], kind="PaymentMethod")
    behaviour = pm["_behaviour"]
    if behaviour["kind"] == "decline":
        decline = behaviour["decline"]
        transition(
            ctx,
            si,
            "requires_payment_method",
            next_action=None,
            last_setup_error=payment_methods.last_error(pm, decline),
        )
        raise payment_methods.decline_error(
            pm, decline, commit=True, extra={"setup_intent": render(ctx.store, si)}
        )
    if behaviour["kind"] in ("auth_setup", "auth_always"):
        action = three_d_secure.next_action(ctx, si, p.get("return_url"))
        return transition(ctx, si, "requires_action", last_setup_error=None, next_action=action)
    return _succeed(ctx, si, pm, authenticated=False)


def after_authentication(ctx: Ctx, si: dict, *, passed: bool) -> dict:
    """Continue a SetupIntent after its 3-D Secure challenge passed or failed."""
    pm = fetch(ctx, "payment_method", si["payment_method"], kind="PaymentMethod")
    if passed:
        return _succeed(ctx, si, pm, authenticated=True)
    return transition(
        ctx,
        si,
        "requires_payment_method",
        next_action=None,
        last_setup_error=three_d_secure.authentication_error(
            pm, "setup_intent_authentication_failure"
        ),
    )
