"""SetupIntents: save a card for later off-session payments, with 3-D Secure when it asks."""

from __future__ import annotations

from ..core.api import route
from ..core.context import Ctx
from ..core.errors import invalid, state_error
from ..core.ids import client_secret
from ..core.lists import paginate
from ..core.objects import apply, apply_metadata, fetch, insert, new_object, save
from ..core.params import LIST_SPEC, Anything, Bool, List, Meta, Str, Url
from ..core.render import render
from . import payment_methods, three_d_secure

UPDATE_SPEC = {
    "customer": Str(),
    "description": Str(),
    "metadata": Meta(),
    "payment_method": Str(),
    "payment_method_types": List(Str()),
    "payment_method_options": Anything(),
    "flow_directions": List(Str(("inbound", "outbound"))),
}
CONFIRM_SPEC = {
    "payment_method": Str(),
    "return_url": Url(),
    "mandate_data": Anything(),
    "payment_method_options": Anything(),
    "use_stripe_sdk": Bool(),
    "client_secret": Str(),
}
CREATE_SPEC = {
    **UPDATE_SPEC,
    **CONFIRM_SPEC,
    "confirm": Bool(),
    "usage": Str(("on_session", "off_session")),
    "automatic_payment_methods": {"enabled": Bool(), "allow_redirects": Str(("always", "never"))},
    "single_use": Anything(),
    "excluded_payment_method_types": List(Str()),
    "attach_to_self": Bool(),
}
CREATE_SPEC.pop("client_secret")
CANCELABLE = ("requires_payment_method", "requires_confirmation", "requires_action")


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
    si.update(status="succeeded", next_action=None, last_setup_error=None)
    save(ctx, si)
    ctx.emit("setup_intent.succeeded", si)
    return si


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
        si.update(status="requires_payment_method", next_action=None)
        si["last_setup_error"] = payment_methods.last_error(pm, decline)
        save(ctx, si)
        ctx.emit("setup_intent.setup_failed", si)
        raise payment_methods.decline_error(
            pm, decline, commit=True, extra={"setup_intent": render(ctx.store, si)}
        )
    if behaviour["kind"] in ("auth_setup", "auth_always"):
        si.update(
            status="requires_action",
            last_setup_error=None,
            next_action=three_d_secure.next_action(ctx, si, p.get("return_url")),
        )
        save(ctx, si)
        ctx.emit("setup_intent.requires_action", si)
        return si
    return _succeed(ctx, si, pm, authenticated=False)


def after_authentication(ctx: Ctx, si: dict, *, passed: bool) -> dict:
    """Continue a SetupIntent after its 3-D Secure challenge passed or failed."""
    pm = fetch(ctx, "payment_method", si["payment_method"], kind="PaymentMethod")
    if passed:
        return _succeed(ctx, si, pm, authenticated=True)
    si.update(
        status="requires_payment_method",
        next_action=None,
        last_setup_error=three_d_secure.authentication_error(
            pm, "setup_intent_authentication_failure"
        ),
    )
    save(ctx, si)
    ctx.emit("setup_intent.setup_failed", si)
    return si


@route("/v1/setup_intents", methods=["POST"])
def create_setup_intent(ctx: Ctx) -> dict:
    """Create a SetupIntent, confirming it at once when ``confirm=true``."""
    p = ctx.validate(CREATE_SPEC)
    customer = p.get("customer")
    if customer:
        fetch(ctx, "customer", customer, kind="customer", param="customer")
    si = new_object(ctx, "seti", "setup_intent", customer=customer)
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
            "payment_method": None,
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
            "status": "requires_payment_method",
            "usage": p.get("usage") or "off_session",
        }
    )
    apply_metadata(si, p)
    if p.get("payment_method"):
        si["payment_method"] = payment_methods.resolve(ctx, p["payment_method"])["id"]
        si["status"] = "requires_confirmation"
    insert(ctx, si, customer=customer)
    ctx.emit("setup_intent.created", si)
    if p.get("confirm"):
        return confirm(ctx, si, {k: p[k] for k in CONFIRM_SPEC if k in p and k != "payment_method"})
    return si


@route("/v1/setup_intents/<obj_id>", methods=["GET"], publishable=True)
def retrieve_setup_intent(ctx: Ctx, obj_id: str) -> dict:
    """Retrieve a SetupIntent."""
    p = ctx.validate({"client_secret": Str()})
    si = load(ctx, obj_id)
    three_d_secure.check_client_secret(ctx, si, p.get("client_secret"))
    return si


@route("/v1/setup_intents/<obj_id>", methods=["POST"])
def update_setup_intent(ctx: Ctx, obj_id: str) -> dict:
    """Update a SetupIntent that has not succeeded."""
    p = ctx.validate(UPDATE_SPEC)
    si = load(ctx, obj_id)
    if si["status"] in ("succeeded", "canceled"):
        raise state_error(
            f"This SetupIntent's status is {si['status']}; it can no longer be updated.",
            "setup_intent_unexpected_state",
        )
    if p.get("payment_method"):
        p["payment_method"] = payment_methods.resolve(ctx, p["payment_method"])["id"]
        si["status"] = "requires_confirmation"
    apply(si, p, [k for k in UPDATE_SPEC if k != "metadata"])
    apply_metadata(si, p)
    return save(ctx, si)


@route("/v1/setup_intents/<obj_id>/confirm", methods=["POST"], publishable=True)
def confirm_setup_intent(ctx: Ctx, obj_id: str) -> dict:
    """Confirm a SetupIntent."""
    p = ctx.validate(CONFIRM_SPEC)
    si = load(ctx, obj_id)
    three_d_secure.check_client_secret(ctx, si, p.get("client_secret"))
    return confirm(ctx, si, p)


@route("/v1/setup_intents/<obj_id>/cancel", methods=["POST"])
def cancel_setup_intent(ctx: Ctx, obj_id: str) -> dict:
    """Cancel a SetupIntent that has not succeeded."""
    p = ctx.validate(
        {"cancellation_reason": Str(("abandoned", "duplicate", "requested_by_customer"))}
    )
    si = load(ctx, obj_id)
    if si["status"] not in CANCELABLE:
        raise state_error(
            f"You cannot cancel this SetupIntent because it has a status of {si['status']}. "
            f"Only a SetupIntent with one of the following statuses may be canceled: "
            f"{', '.join(CANCELABLE)}.",
            "setup_intent_unexpected_state",
        )
    si.update(status="canceled", cancellation_reason=p.get("cancellation_reason"), next_action=None)
    save(ctx, si)
    ctx.emit("setup_intent.canceled", si)
    return si


@route("/v1/setup_intents", methods=["GET"])
def list_setup_intents(ctx: Ctx) -> dict:
    """List SetupIntents, optionally of one customer or payment method."""
    p = ctx.validate(
        {**LIST_SPEC, "customer": Str(), "payment_method": Str(), "attach_to_self": Bool()}
    )
    where, args = [], []
    if p.get("customer"):
        where.append("customer = ?")
        args.append(p["customer"])
    if p.get("payment_method"):
        where.append("json_extract(body, '$.payment_method') = ?")
        args.append(p["payment_method"])
    return paginate(
        ctx.store,
        p,
        "/v1/setup_intents",
        obj_type="setup_intent",
        where=" AND ".join(where),
        args=args,
    )
