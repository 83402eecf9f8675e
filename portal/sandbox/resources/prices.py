"""Prices: one-time and recurring, per-unit or tiered, metered with a billing meter.

Prices are immutable once created except ``active``, ``metadata``, ``nickname``,
``lookup_key`` (moved between prices with ``transfer_lookup_key``) and a first
``tax_behavior``. ``tiers`` is includable: only shown with ``expand[]=tiers``.
"""

from __future__ import annotations

from ..core.api import route
from ..core.context import Ctx
from ..core.errors import invalid
from ..core.lists import equals, field, filtered, flag, one_of, paginate, search
from ..core.objects import apply, apply_metadata, save
from ..core.params import LIST_SPEC, Bool, Int, List, Meta, Str
from ..objects.prices import claim_lookup_key, create_price_object, load

RECURRING = {
    "interval": Str(("day", "week", "month", "year")),
    "interval_count": Int(minimum=1),
    "usage_type": Str(("licensed", "metered")),
    "meter": Str(),
    "trial_period_days": Int(minimum=0),
}
TIER = {
    "up_to": Str(),
    "unit_amount": Int(minimum=0),
    "unit_amount_decimal": Str(),
    "flat_amount": Int(minimum=0),
    "flat_amount_decimal": Str(),
}
UPDATE_SPEC = {
    "active": Bool(),
    "lookup_key": Str(),
    "transfer_lookup_key": Bool(),
    "metadata": Meta(),
    "nickname": Str(),
    "tax_behavior": Str(("exclusive", "inclusive", "unspecified")),
}
CREATE_SPEC = {
    **UPDATE_SPEC,
    "currency": Str(),
    "product": Str(),
    "product_data": {
        "name": Str(),
        "active": Bool(),
        "metadata": Meta(),
        "id": Str(),
        "statement_descriptor": Str(),
        "tax_code": Str(),
        "unit_label": Str(),
    },
    "unit_amount": Int(minimum=0),
    "unit_amount_decimal": Str(),
    "billing_scheme": Str(("per_unit", "tiered")),
    "tiers": List(TIER),
    "tiers_mode": Str(("graduated", "volume")),
    "recurring": RECURRING,
    "transform_quantity": {"divide_by": Int(minimum=1), "round": Str(("up", "down"))},
    "custom_unit_amount": {"enabled": Bool(), "maximum": Int(), "minimum": Int(), "preset": Int()},
}


@route("/v1/prices", methods=["POST"])
def create_price(ctx: Ctx) -> dict:
    """Create a price."""
    return create_price_object(ctx, ctx.validate(CREATE_SPEC))


@route("/v1/prices/<obj_id>", methods=["GET"])
def retrieve_price(ctx: Ctx, obj_id: str) -> dict:
    """Retrieve a price."""
    ctx.validate({})
    return load(ctx, obj_id)


@route("/v1/prices/<obj_id>", methods=["POST"])
def update_price(ctx: Ctx, obj_id: str) -> dict:
    """Update the mutable fields of a price."""
    p = ctx.validate(UPDATE_SPEC)
    price = load(ctx, obj_id)
    before = dict(price)
    if (
        "tax_behavior" in p
        and price["tax_behavior"] != "unspecified"
        and p["tax_behavior"] != price["tax_behavior"]
    ):
        raise invalid(
            "The tax_behavior of a price cannot be changed once it is set.", "tax_behavior"
        )
    if "lookup_key" in p:
        claim_lookup_key(ctx, price, p["lookup_key"], bool(p.get("transfer_lookup_key")))
    apply(price, p, ("active", "lookup_key", "nickname", "tax_behavior"))
    apply_metadata(price, p)
    save(ctx, price)
    if price != before:
        ctx.emit("price.updated", price, before=before)
    return price


FILTERS = {
    "active": flag(field("active")),
    **{key: equals(field(key)) for key in ("currency", "product", "type")},
    "lookup_keys": one_of(field("lookup_key")),
    **{
        f"recurring.{key}": equals(field(f"recurring.{key}"))
        for key in ("interval", "usage_type", "meter")
    },
}


@route("/v1/prices", methods=["GET"])
def list_prices(ctx: Ctx) -> dict:
    """List prices filtered by active, currency, product, type, lookup_keys or recurring."""
    p = ctx.validate(
        {
            **LIST_SPEC,
            "active": Bool(),
            "currency": Str(),
            "product": Str(),
            "type": Str(("one_time", "recurring")),
            "lookup_keys": List(Str()),
            "recurring": {"interval": Str(), "usage_type": Str(), "meter": Str()},
        }
    )
    if len(p.get("lookup_keys") or []) > 10:
        raise invalid("You may pass at most 10 lookup keys.", "lookup_keys")
    return paginate(ctx.store, p, "/v1/prices", obj_type="price", **filtered(p, FILTERS))


@route("/v1/prices/search", methods=["GET"])
def search_prices(ctx: Ctx) -> dict:
    """Search prices by product, lookup_key, currency, type, active, created and metadata."""
    p = ctx.validate({"query": Str(), "limit": Int(), "page": Str()})
    fields = {
        k: (lambda o, k=k: o.get(k))
        for k in ("product", "lookup_key", "currency", "type", "created")
    }
    fields["active"] = lambda o: str(o.get("active")).lower()
    return search(ctx.store, "price", p, "/v1/prices/search", fields)
