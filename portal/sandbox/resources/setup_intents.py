"""SetupIntents over HTTP: create, retrieve, update, confirm, cancel, list (see ``objects``)."""

from __future__ import annotations

from ..core.api import route
from ..core.context import Ctx
from ..core.errors import state_error
from ..core.lists import equals, field, filtered, paginate
from ..core.objects import apply, apply_metadata, save
from ..core.params import LIST_SPEC, Anything, Bool, List, Meta, Str, Url
from ..objects import three_d_secure
from ..objects.setup_intents import cancel, confirm, load, new_setup_intent, use_payment_method

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


@route("/v1/setup_intents", methods=["POST"])
def create_setup_intent(ctx: Ctx) -> dict:
    """Create a SetupIntent, confirming it at once when ``confirm=true``."""
    p = ctx.validate(CREATE_SPEC)
    si = new_setup_intent(ctx, p)
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
        p["payment_method"] = use_payment_method(ctx, si, p["payment_method"])
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
    return cancel(ctx, load(ctx, obj_id), p.get("cancellation_reason"))


@route("/v1/setup_intents", methods=["GET"])
def list_setup_intents(ctx: Ctx) -> dict:
    """List SetupIntents, optionally of one customer or payment method."""
    p = ctx.validate(
        {**LIST_SPEC, "customer": Str(), "payment_method": Str(), "attach_to_self": Bool()}
    )
    filters = {"customer": equals("customer"), "payment_method": equals(field("payment_method"))}
    return paginate(
        ctx.store, p, "/v1/setup_intents", obj_type="setup_intent", **filtered(p, filters)
    )
