"""Products: the product record prices belong to."""

from __future__ import annotations

from ..core.context import Ctx
from ..core.errors import invalid
from ..core.objects import apply, apply_metadata, fetch, insert, new_object
from ..core.params import need

FIELDS = (
    "active",
    "description",
    "images",
    "marketing_features",
    "name",
    "package_dimensions",
    "shippable",
    "statement_descriptor",
    "tax_code",
    "unit_label",
    "url",
)


def load(ctx: Ctx, obj_id: str, param: str | None = "id") -> dict:
    """Return a live product or raise 404 "No such product"."""
    return fetch(ctx, "product", obj_id, kind="product", param=param)


def create_product_record(ctx: Ctx, p: dict) -> dict:
    """Store a product from validated create params and emit product.created."""
    need(p, "name")
    if p.get("id") and ctx.store.get(p["id"], include_deleted=True) is not None:
        raise invalid("Product already exists.", "id", "resource_already_exists")
    product = new_object(ctx, "prod", "product", obj_id=p.get("id"))
    product.update(
        {
            "active": True,
            "default_price": None,
            "description": None,
            "images": [],
            "marketing_features": [],
            "metadata": {},
            "name": p["name"],
            "package_dimensions": None,
            "shippable": None,
            "statement_descriptor": None,
            "tax_code": None,
            "type": "service",
            "unit_label": None,
            "updated": product["created"],
            "url": None,
        }
    )
    apply(product, p, FIELDS + ("type",))
    apply_metadata(product, p)
    insert(ctx, product)
    ctx.emit("product.created", product)
    return product
