"""PaymentIntents over HTTP: create, confirm, capture, cancel, retrieve, update, list, search.

The lifecycle itself (attempts, 3-D Secure, declines, transitions) is in
``objects.payment_intents``.
"""

from __future__ import annotations

from ..core.api import route
from ..core.context import Ctx
from ..core.currencies import check_currency
from ..core.errors import invalid, state_error
from ..core.lists import equals, filtered, paginate, search
from ..core.objects import apply, apply_metadata, save
from ..core.params import LIST_SPEC, Anything, Bool, Int, List, Meta, Str, Url
from ..objects import three_d_secure
from ..objects.payment_intents import (
    cancel,
    capture,
    confirm,
    load,
    new_intent,
    use_payment_method,
)

OFF_SESSION = Anything()
UPDATE_SPEC = {
    "amount": Int(minimum=1),
    "currency": Str(),
    "customer": Str(),
    "description": Str(),
    "metadata": Meta(),
    "payment_method": Str(),
    "payment_method_types": List(Str()),
    "receipt_email": Str(),
    "setup_future_usage": Str(("on_session", "off_session")),
    "capture_method": Str(("automatic", "automatic_async", "manual")),
    "shipping": Anything(),
    "statement_descriptor": Str(),
    "statement_descriptor_suffix": Str(),
    "transfer_group": Str(),
    "payment_method_options": Anything(),
}
CONFIRM_SPEC = {
    "payment_method": Str(),
    "off_session": OFF_SESSION,
    "return_url": Url(),
    "setup_future_usage": Str(("on_session", "off_session")),
    "receipt_email": Str(),
    "error_on_requires_action": Bool(),
    "mandate_data": Anything(),
    "payment_method_options": Anything(),
    "use_stripe_sdk": Bool(),
    "client_secret": Str(),
    "capture_method": Str(("automatic", "automatic_async", "manual")),
    "shipping": Anything(),
}
CREATE_SPEC = {
    **UPDATE_SPEC,
    **CONFIRM_SPEC,
    "confirm": Bool(),
    "automatic_payment_methods": {"enabled": Bool(), "allow_redirects": Str(("always", "never"))},
    "confirmation_method": Str(("automatic", "manual")),
    "excluded_payment_method_types": List(Str()),
}
CREATE_SPEC.pop("client_secret")


@route("/v1/payment_intents", methods=["POST"])
def create_payment_intent(ctx: Ctx) -> dict:
    """Create a PaymentIntent, confirming it at once when ``confirm=true``."""
    p = ctx.validate(CREATE_SPEC)
    pi = new_intent(ctx, p)
    if p.get("confirm"):
        return confirm(ctx, pi, {k: p[k] for k in CONFIRM_SPEC if k in p and k != "payment_method"})
    if "off_session" in p:
        raise invalid("You can only pass `off_session` when `confirm=true`.", "off_session")
    return pi


@route("/v1/payment_intents/<obj_id>", methods=["GET"], publishable=True)
def retrieve_payment_intent(ctx: Ctx, obj_id: str) -> dict:
    """Retrieve a PaymentIntent (with its client_secret when called from the browser)."""
    p = ctx.validate({"client_secret": Str()})
    pi = load(ctx, obj_id)
    three_d_secure.check_client_secret(ctx, pi, p.get("client_secret"))
    return pi


@route("/v1/payment_intents/<obj_id>", methods=["POST"])
def update_payment_intent(ctx: Ctx, obj_id: str) -> dict:
    """Update an unconfirmed PaymentIntent."""
    p = ctx.validate(UPDATE_SPEC)
    pi = load(ctx, obj_id)
    if pi["status"] in ("succeeded", "canceled", "processing", "requires_capture"):
        raise state_error(
            f"This PaymentIntent's status is {pi['status']}; it can no longer be updated."
        )
    if "currency" in p:
        p["currency"] = check_currency(p["currency"])
    if "payment_method" in p and p["payment_method"]:
        p["payment_method"] = use_payment_method(ctx, pi, p["payment_method"])
    apply(pi, p, [k for k in UPDATE_SPEC if k != "metadata"])
    apply_metadata(pi, p)
    return save(ctx, pi)


@route("/v1/payment_intents/<obj_id>/confirm", methods=["POST"], publishable=True)
def confirm_payment_intent(ctx: Ctx, obj_id: str) -> dict:
    """Confirm a PaymentIntent."""
    p = ctx.validate(CONFIRM_SPEC)
    pi = load(ctx, obj_id)
    three_d_secure.check_client_secret(ctx, pi, p.get("client_secret"))
    return confirm(ctx, pi, p)


@route("/v1/payment_intents/<obj_id>/capture", methods=["POST"])
def capture_payment_intent(ctx: Ctx, obj_id: str) -> dict:
    """Capture an authorised PaymentIntent, fully or partially."""
    p = ctx.validate(
        {
            "amount_to_capture": Int(minimum=0),
            "metadata": Meta(),
            "final_capture": Bool(),
            "statement_descriptor": Str(),
        }
    )
    pi = load(ctx, obj_id)
    apply_metadata(pi, p)
    return capture(ctx, pi, p.get("amount_to_capture"))


@route("/v1/payment_intents/<obj_id>/cancel", methods=["POST"])
def cancel_payment_intent(ctx: Ctx, obj_id: str) -> dict:
    """Cancel a PaymentIntent that has not succeeded; an authorisation is released."""
    p = ctx.validate(
        {
            "cancellation_reason": Str(
                ("duplicate", "fraudulent", "requested_by_customer", "abandoned")
            )
        }
    )
    return cancel(ctx, load(ctx, obj_id), p.get("cancellation_reason"))


@route("/v1/payment_intents", methods=["GET"])
def list_payment_intents(ctx: Ctx) -> dict:
    """List PaymentIntents, optionally of one customer."""
    p = ctx.validate({**LIST_SPEC, "customer": Str()})
    filters = {"customer": equals("customer")}
    return paginate(
        ctx.store, p, "/v1/payment_intents", obj_type="payment_intent", **filtered(p, filters)
    )


@route("/v1/payment_intents/search", methods=["GET"])
def search_payment_intents(ctx: Ctx) -> dict:
    """Search PaymentIntents by status, customer, amount, currency, created and metadata."""
    p = ctx.validate({"query": Str(), "limit": Int(), "page": Str()})
    fields = {
        k: (lambda o, k=k: o.get(k))
        for k in ("status", "customer", "amount", "currency", "created")
    }
    return search(ctx.store, "payment_intent", p, "/v1/payment_intents/search", fields)
