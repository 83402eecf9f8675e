"""Charges: made by PaymentIntents (never created directly), with retrieve, list and update."""

from __future__ import annotations

from ..core.api import route
from ..core.context import Ctx
from ..core.lists import equals, field, filtered, paginate
from ..core.objects import apply, apply_metadata, fetch, save
from ..core.params import LIST_SPEC, Meta, Str
from ..core.render import renderer
from ..core.store import Store
from ..objects.charges import refunds_of


@renderer("charge")
def _render(store: Store, charge: dict) -> dict:
    """Include the charge's refunds list as Stripe's example object does."""
    items = [
        {k: v for k, v in r.items() if not k.startswith("_")}
        for r in refunds_of(store, charge["id"])
    ]
    charge["refunds"] = {
        "object": "list",
        "data": items[:10],
        "has_more": len(items) > 10,
        "url": f"/v1/charges/{charge['id']}/refunds",
    }
    return charge


@route("/v1/charges/<obj_id>", methods=["GET"])
def retrieve_charge(ctx: Ctx, obj_id: str) -> dict:
    """Retrieve a charge."""
    ctx.validate({})
    return fetch(ctx, "charge", obj_id, kind="charge")


@route("/v1/charges/<obj_id>", methods=["POST"])
def update_charge(ctx: Ctx, obj_id: str) -> dict:
    """Update a charge's description, receipt email or metadata."""
    p = ctx.validate(
        {
            "description": Str(),
            "metadata": Meta(),
            "receipt_email": Str(),
            "fraud_details": {"user_report": Str(("fraudulent", "safe"))},
        }
    )
    charge = fetch(ctx, "charge", obj_id, kind="charge")
    before = dict(charge)
    apply(charge, p, ("description", "receipt_email"))
    apply_metadata(charge, p)
    save(ctx, charge)
    if charge != before:
        ctx.emit("charge.updated", charge, before=before)
    return charge


@route("/v1/charges", methods=["GET"])
def list_charges(ctx: Ctx) -> dict:
    """List charges filtered by customer or payment intent."""
    p = ctx.validate(
        {**LIST_SPEC, "customer": Str(), "payment_intent": Str(), "transfer_group": Str()}
    )
    filters = {"customer": equals("customer"), "payment_intent": equals(field("payment_intent"))}
    return paginate(ctx.store, p, "/v1/charges", obj_type="charge", **filtered(p, filters))


@route("/v1/charges/<obj_id>/refunds", methods=["GET"])
def list_charge_refunds(ctx: Ctx, obj_id: str) -> dict:
    """List the refunds of one charge."""
    p = ctx.validate(LIST_SPEC)
    fetch(ctx, "charge", obj_id, kind="charge")
    return paginate(
        ctx.store,
        p,
        f"/v1/charges/{obj_id}/refunds",
        obj_type="refund",
        where="json_extract(body, '$.charge') = ?",
        args=(obj_id,),
    )
