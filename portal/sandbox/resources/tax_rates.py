"""Tax rates: a percentage, inclusive or exclusive, with display name and jurisdiction."""

from __future__ import annotations

from ..core.api import route
from ..core.context import Ctx
from ..core.errors import invalid
from ..core.lists import field, filtered, flag, paginate
from ..core.objects import apply, apply_metadata, fetch, insert, new_object, save
from ..core.params import LIST_SPEC, Bool, Meta, Num, Str, need

TAX_TYPES = (
    "amusement_tax",
    "communications_tax",
    "gst",
    "hst",
    "igst",
    "jct",
    "lease_tax",
    "pst",
    "qst",
    "retail_delivery_fee",
    "rst",
    "sales_tax",
    "service_tax",
    "vat",
)
UPDATE_SPEC = {
    "active": Bool(),
    "country": Str(),
    "description": Str(),
    "display_name": Str(nullable=False),
    "jurisdiction": Str(),
    "metadata": Meta(),
    "state": Str(),
    "tax_type": Str(TAX_TYPES),
}
CREATE_SPEC = {**UPDATE_SPEC, "inclusive": Bool(), "percentage": Num()}
FIELDS = ("active", "country", "description", "display_name", "jurisdiction", "state", "tax_type")


@route("/v1/tax_rates", methods=["POST"])
def create_tax_rate(ctx: Ctx) -> dict:
    """Create a tax rate."""
    p = ctx.validate(CREATE_SPEC)
    need(p, "display_name", "percentage")
    if "inclusive" not in p:
        raise invalid("Missing required param: inclusive.", "inclusive", "parameter_missing")
    if not 0 <= p["percentage"] <= 100:
        raise invalid("Invalid percentage: must be between 0 and 100.", "percentage")
    rate = new_object(ctx, "txr", "tax_rate")
    rate.update(
        {
            "active": True,
            "country": None,
            "description": None,
            "display_name": p["display_name"],
            "effective_percentage": p["percentage"],
            "flat_amount": None,
            "inclusive": p["inclusive"],
            "jurisdiction": None,
            "jurisdiction_level": None,
            "metadata": {},
            "percentage": p["percentage"],
            "rate_type": "percentage",
            "state": None,
            "tax_type": None,
        }
    )
    apply(rate, p, FIELDS)
    apply_metadata(rate, p)
    insert(ctx, rate)
    ctx.emit("tax_rate.created", rate)
    return rate


@route("/v1/tax_rates/<obj_id>", methods=["GET"])
def retrieve_tax_rate(ctx: Ctx, obj_id: str) -> dict:
    """Retrieve a tax rate."""
    ctx.validate({})
    return fetch(ctx, "tax_rate", obj_id, kind="tax rate")


@route("/v1/tax_rates/<obj_id>", methods=["POST"])
def update_tax_rate(ctx: Ctx, obj_id: str) -> dict:
    """Update a tax rate's descriptive fields (percentage and inclusive are fixed)."""
    p = ctx.validate(UPDATE_SPEC)
    rate = fetch(ctx, "tax_rate", obj_id, kind="tax rate")
    before = dict(rate)
    apply(rate, p, FIELDS)
    apply_metadata(rate, p)
    save(ctx, rate)
    if rate != before:
        ctx.emit("tax_rate.updated", rate, before=before)
    return rate


@route("/v1/tax_rates", methods=["GET"])
def list_tax_rates(ctx: Ctx) -> dict:
    """List tax rates filtered by active and inclusive."""
    p = ctx.validate({**LIST_SPEC, "active": Bool(), "inclusive": Bool()})
    filters = {key: flag(field(key)) for key in ("active", "inclusive")}
    return paginate(ctx.store, p, "/v1/tax_rates", obj_type="tax_rate", **filtered(p, filters))
