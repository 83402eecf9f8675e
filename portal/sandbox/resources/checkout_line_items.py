"""The line items of a Checkout Session: built from ``line_items[]`` and listed page by page.

Each is an ``item`` object carrying its price as it was when the session was created, the
product's name as description and its amount for the quantity (tiers included).
"""

from __future__ import annotations

from ..billing import catalog, pricing
from ..core.context import Ctx
from ..core.errors import invalid
from ..core.ids import new_id
from ..core.objects import fetch
from ..core.params import need


def build(ctx: Ctx, mode: str, entries: list[dict]) -> list[dict]:
    """Build the session's ``item`` objects from line_items[] with a price and a quantity."""
    items = []
    for i, entry in enumerate(entries):
        if entry.get("price_data") is not None:
            raise invalid(
                "The sandbox supports line_items with `price` only; create the price first.",
                f"line_items[{i}][price_data]",
            )
        need(entry, "price")
        price = fetch(ctx, "price", entry["price"], kind="price", param=f"line_items[{i}][price]")
        if not price.get("active", True):
            raise invalid(
                f"The price specified ({price['id']}) is inactive. This field only "
                "accepts active prices.",
                f"line_items[{i}][price]",
            )
        recurring = price.get("recurring")
        metered = (recurring or {}).get("usage_type") == "metered"
        quantity = entry.get("quantity")
        if quantity is None and not metered:
            raise invalid(
                "Quantity is required. Add `quantity` to `line_items[" + str(i) + "]`",
                f"line_items[{i}][quantity]",
            )
        quantity = quantity or 0 if metered else quantity
        amount = 0 if metered else pricing.amount_for_quantity(catalog.price_terms(price), quantity)
        product = ctx.store.get(price.get("product") or "", "product", include_deleted=True) or {}
        public_price = {k: v for k, v in price.items() if not k.startswith("_")}
        item = {
            "id": new_id("li"),
            "object": "item",
            "adjustable_quantity": None,
            "amount_discount": 0,
            "amount_subtotal": amount,
            "amount_tax": 0,
            "amount_total": amount,
            "currency": price["currency"],
            "description": product.get("name") or price.get("nickname"),
            "metadata": {},
            "price": public_price,
            "quantity": quantity,
        }
        items.append(item)
    if mode == "payment" and any(i["price"].get("recurring") for i in items):
        raise invalid(
            "You specified `payment` mode but passed a recurring price. Either switch "
            "to `subscription` mode or use only one-time prices.",
            "line_items",
        )
    if mode == "subscription" and not any(i["price"].get("recurring") for i in items):
        raise invalid(
            "You must provide at least one recurring price in `subscription` mode when "
            "using prices.",
            "line_items",
        )
    if len({i["currency"] for i in items}) > 1:
        raise invalid("All prices on a Checkout Session must use the same currency.", "line_items")
    return items


def page(items: list[dict], params: dict, url: str) -> dict:
    """Return one page of items in their session order (``limit``, ``starting_after`` ...)."""
    limit = params.get("limit") or 10
    if not 1 <= limit <= 100:
        raise invalid("Invalid limit: must be between 1 and 100", "limit")
    ids = [i["id"] for i in items]
    start, end = 0, len(items)
    for key in ("starting_after", "ending_before"):
        if params.get(key) and params[key] not in ids:
            raise invalid(f"No such object: '{params[key]}'", key, "resource_missing")
    if params.get("starting_after"):
        start = ids.index(params["starting_after"]) + 1
    if params.get("ending_before"):
        end = ids.index(params["ending_before"])
        start = max(0, end - limit)
        return {"object": "list", "data": items[start:end], "has_more": start > 0, "url": url}
    return {
        "object": "list",
        "data": items[start : start + limit],
        "has_more": start + limit < end,
        "url": url,
    }
