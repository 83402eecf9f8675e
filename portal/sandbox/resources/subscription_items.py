"""Subscription items: list, retrieve, create, update and delete, with prorations."""

from __future__ import annotations

from ..billing import catalog, changes
from ..billing import subscription_state as subs
from ..core.api import route
from ..core.context import Ctx
from ..core.errors import invalid
from ..core.lists import paginate
from ..core.objects import deleted_stub, fetch
from ..core.params import LIST_SPEC, Bool, Int, List, Meta, Str, need
from ..core.render import render, renderer
from ..core.store import Store
from .subscriptions import update_subscription

WRITE_SPEC = {
    "price": Str(),
    "quantity": Int(minimum=0),
    "metadata": Meta(),
    "tax_rates": List(Str()),
    "proration_behavior": Str(changes.PRORATION_BEHAVIORS),
    "proration_date": Int(),
    "payment_behavior": Str(("allow_incomplete", "default_incomplete", "error_if_incomplete")),
    "off_session": Bool(),
}


@renderer("subscription_item")
def _render(store: Store, item: dict) -> dict:
    """Show the item's full price and its legacy ``plan`` view."""
    price = (
        store.get(item["price"], "price", include_deleted=True)
        if isinstance(item.get("price"), str)
        else item.get("price")
    )
    if price is not None:
        item["price"] = render(store, price)
        item["plan"] = catalog.plan_of(price)
    return item


def _load(ctx: Ctx, item_id: str) -> dict:
    return fetch(ctx, "subscription_item", item_id, kind="subscription item")


def _change(ctx: Ctx, sub_id: str, entry: dict, p: dict) -> dict:
    """Run one items[] change through the subscription update path (prorations included)."""
    saved = ctx.params
    ctx.params = {"items": [entry]}
    for key in ("proration_behavior", "proration_date", "payment_behavior", "off_session"):
        if key in saved:
            ctx.params[key] = saved[key]
    try:
        return update_subscription(ctx, sub_id)
    finally:
        ctx.params = saved


@route("/v1/subscription_items", methods=["GET"])
def list_subscription_items(ctx: Ctx) -> dict:
    """List the items of a subscription."""
    p = ctx.validate({**LIST_SPEC, "subscription": Str()})
    need(p, "subscription")
    return paginate(
        ctx.store,
        p,
        f"/v1/subscription_items?subscription={p['subscription']}",
        obj_type="subscription_item",
        where="json_extract(body, '$.subscription') = ?",
        args=(p["subscription"],),
    )


@route("/v1/subscription_items/<obj_id>", methods=["GET"])
def retrieve_subscription_item(ctx: Ctx, obj_id: str) -> dict:
    """Retrieve a subscription item."""
    ctx.validate({})
    return _load(ctx, obj_id)


@route("/v1/subscription_items", methods=["POST"])
def create_subscription_item(ctx: Ctx) -> dict:
    """Add an item to a subscription."""
    p = ctx.validate({**WRITE_SPEC, "subscription": Str()})
    need(p, "subscription", "price")
    before = {i["id"] for i in subs.items_of(ctx.store, p["subscription"])}
    entry = {k: v for k, v in p.items() if k in ("price", "quantity", "metadata", "tax_rates")}
    _change(ctx, p["subscription"], entry, p)
    added = [i for i in subs.items_of(ctx.store, p["subscription"]) if i["id"] not in before]
    return added[-1]


@route("/v1/subscription_items/<obj_id>", methods=["POST"])
def update_subscription_item(ctx: Ctx, obj_id: str) -> dict:
    """Change an item's price, quantity, metadata or tax rates."""
    p = ctx.validate(WRITE_SPEC)
    item = _load(ctx, obj_id)
    entry = {
        "id": obj_id,
        **{k: v for k, v in p.items() if k in ("price", "quantity", "metadata", "tax_rates")},
    }
    _change(ctx, item["subscription"], entry, p)
    return _load(ctx, obj_id)


@route("/v1/subscription_items/<obj_id>", methods=["DELETE"])
def delete_subscription_item(ctx: Ctx, obj_id: str) -> dict:
    """Remove an item from its subscription (not the last one)."""
    p = ctx.validate(
        {
            "proration_behavior": Str(changes.PRORATION_BEHAVIORS),
            "proration_date": Int(),
            "clear_usage": Bool(),
        }
    )
    item = _load(ctx, obj_id)
    if len(subs.items_of(ctx.store, item["subscription"])) < 2:
        raise invalid(
            "A subscription must have at least one active plan. To cancel a "
            "subscription, please use the cancel API endpoint on /v1/subscriptions."
        )
    _change(ctx, item["subscription"], {"id": obj_id, "deleted": True}, p)
    return deleted_stub(item)
