"""Products: create, retrieve, update, delete, list and search."""

from __future__ import annotations

from ..core.api import route
from ..core.context import Ctx
from ..core.errors import invalid
from ..core.lists import equals, field, filtered, flag, one_of, paginate, search
from ..core.objects import apply, apply_metadata, deleted_stub, save
from ..core.params import LIST_SPEC, Bool, Int, List, Meta, Num, Str
from ..objects.prices import create_price_object
from ..objects.products import FIELDS, create_product_record, load

UPDATE_SPEC = {
    "active": Bool(),
    "default_price": Str(),
    "description": Str(),
    "images": List(Str()),
    "marketing_features": List({"name": Str()}),
    "metadata": Meta(),
    "name": Str(nullable=False),
    "package_dimensions": {"height": Num(), "length": Num(), "weight": Num(), "width": Num()},
    "shippable": Bool(),
    "statement_descriptor": Str(),
    "tax_code": Str(),
    "unit_label": Str(),
    "url": Str(),
}
CREATE_SPEC = {
    **UPDATE_SPEC,
    "id": Str(),
    "type": Str(("good", "service")),
    "default_price_data": {
        "currency": Str(),
        "unit_amount": Int(minimum=0),
        "unit_amount_decimal": Str(),
        "recurring": {"interval": Str(("day", "week", "month", "year")), "interval_count": Int()},
        "tax_behavior": Str(("exclusive", "inclusive", "unspecified")),
        "metadata": Meta(),
    },
}
CREATE_SPEC.pop("default_price")


@route("/v1/products", methods=["POST"])
def create_product(ctx: Ctx) -> dict:
    """Create a product, optionally with its default price."""
    p = ctx.validate(CREATE_SPEC)
    product = create_product_record(ctx, p)
    if p.get("default_price_data"):
        data = dict(p["default_price_data"])
        data["product"] = product["id"]
        price = create_price_object(ctx, data)
        product["default_price"] = price["id"]
        save(ctx, product)
    return product


@route("/v1/products/<obj_id>", methods=["GET"])
def retrieve_product(ctx: Ctx, obj_id: str) -> dict:
    """Retrieve a product."""
    ctx.validate({})
    return load(ctx, obj_id)


@route("/v1/products/<obj_id>", methods=["POST"])
def update_product(ctx: Ctx, obj_id: str) -> dict:
    """Update a product; ``default_price`` must be an active price of this product."""
    p = ctx.validate(UPDATE_SPEC)
    product = load(ctx, obj_id)
    before = dict(product)
    if p.get("default_price"):
        price = ctx.store.get(p["default_price"], "price")
        if price is None or price["product"] != obj_id:
            raise invalid(
                f"No such price: '{p['default_price']}'", "default_price", "resource_missing"
            )
        if not price["active"]:
            raise invalid("The default price must be active.", "default_price")
    apply(product, p, FIELDS + ("default_price",))
    apply_metadata(product, p)
    if product != before:
        product["updated"] = ctx.now()
        save(ctx, product)
        ctx.emit("product.updated", product, before=before)
    return product


@route("/v1/products/<obj_id>", methods=["DELETE"])
def delete_product(ctx: Ctx, obj_id: str) -> dict:
    """Delete a product that has no prices (Stripe refuses otherwise)."""
    ctx.validate({})
    product = load(ctx, obj_id)
    if ctx.store.select("price", "json_extract(body, '$.product') = ?", (obj_id,), limit=1):
        raise invalid(
            "This product cannot be deleted because it has one or more user-created prices.",
            None,
            "product_has_prices",
        )
    ctx.store.mark_deleted(obj_id)
    ctx.emit("product.deleted", product)
    return deleted_stub(product)


FILTERS = {
    "active": flag(field("active")),
    "shippable": flag(field("shippable")),
    "url": equals(field("url")),
    "ids": one_of("id"),
}


@route("/v1/products", methods=["GET"])
def list_products(ctx: Ctx) -> dict:
    """List products, filtered by active, ids, shippable or url."""
    p = ctx.validate(
        {**LIST_SPEC, "active": Bool(), "ids": List(Str()), "shippable": Bool(), "url": Str()}
    )
    return paginate(ctx.store, p, "/v1/products", obj_type="product", **filtered(p, FILTERS))


@route("/v1/products/search", methods=["GET"])
def search_products(ctx: Ctx) -> dict:
    """Search products by name, active, description, created, url and metadata."""
    p = ctx.validate({"query": Str(), "limit": Int(), "page": Str()})
    fields = {
        k: (lambda o, k=k: o.get(k)) for k in ("name", "description", "created", "url", "shippable")
    }
    fields["active"] = lambda o: str(o.get("active")).lower()
    return search(ctx.store, "product", p, "/v1/products/search", fields)
