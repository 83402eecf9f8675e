"""Coupons: percent or amount off, once / repeating / forever, with redemption limits.

``valid`` is computed when the coupon is read: false once ``redeem_by`` has passed or
``max_redemptions`` is reached. Billing code applying a coupon calls ``redeem``.
"""

from __future__ import annotations

from ..core.api import route
from ..core.clock import wall_time
from ..core.context import Ctx
from ..core.currencies import check_currency
from ..core.errors import invalid
from ..core.ids import random_token
from ..core.lists import paginate
from ..core.objects import apply, apply_metadata, deleted_stub, insert, new_object, save
from ..core.params import LIST_SPEC, Int, List, Meta, Num, Str
from ..core.render import renderer
from ..core.store import Store
from ..objects.coupons import is_valid, load

CREATE_SPEC = {
    "id": Str(),
    "name": Str(),
    "percent_off": Num(),
    "amount_off": Int(minimum=1),
    "currency": Str(),
    "duration": Str(("once", "repeating", "forever")),
    "duration_in_months": Int(minimum=1),
    "max_redemptions": Int(minimum=1),
    "redeem_by": Int(),
    "metadata": Meta(),
    "applies_to": {"products": List(Str())},
    "currency_options": Meta(),
}


@renderer("coupon")
def _render(store: Store, coupon: dict) -> dict:
    """Compute ``valid`` from redeem_by and the redemption count."""
    coupon["valid"] = is_valid(coupon, wall_time())
    return coupon


@route("/v1/coupons", methods=["POST"])
def create_coupon(ctx: Ctx) -> dict:
    """Create a coupon."""
    p = ctx.validate(CREATE_SPEC)
    percent, amount = p.get("percent_off"), p.get("amount_off")
    if (percent is None) == (amount is None):
        raise invalid(
            "Must provide exactly one of these parameters: percent_off, amount_off.", "percent_off"
        )
    if percent is not None and not 0 < percent <= 100:
        raise invalid("Invalid percent_off: must be greater than 0 and at most 100.", "percent_off")
    currency = None
    if amount is not None:
        if not p.get("currency"):
            raise invalid("You must pass currency when passing an amount_off.", "currency")
        currency = check_currency(p["currency"])
    duration = p.get("duration") or "once"
    months = p.get("duration_in_months")
    if duration == "repeating" and not months:
        raise invalid("Missing required param: duration_in_months.", "duration_in_months")
    if duration != "repeating" and months:
        raise invalid(
            "duration_in_months can only be set when duration is repeating.", "duration_in_months"
        )
    if p.get("redeem_by") is not None and p["redeem_by"] <= ctx.now():
        raise invalid("Invalid redeem_by: must be in the future.", "redeem_by")
    if p.get("id") and ctx.store.get(p["id"], include_deleted=True) is not None:
        raise invalid("Coupon already exists.", "id", "resource_already_exists")
    coupon = new_object(ctx, "", "coupon", obj_id=p.get("id") or random_token(8))
    coupon.update(
        {
            "amount_off": amount,
            "currency": currency,
            "duration": duration,
            "duration_in_months": months,
            "max_redemptions": p.get("max_redemptions"),
            "metadata": {},
            "name": p.get("name"),
            "percent_off": percent,
            "redeem_by": p.get("redeem_by"),
            "times_redeemed": 0,
            "valid": True,
            "_applies_to": {"products": (p.get("applies_to") or {}).get("products") or []},
        }
    )
    apply_metadata(coupon, p)
    insert(ctx, coupon)
    ctx.emit("coupon.created", coupon)
    return coupon


@route("/v1/coupons/<obj_id>", methods=["GET"])
def retrieve_coupon(ctx: Ctx, obj_id: str) -> dict:
    """Retrieve a coupon."""
    ctx.validate({})
    return load(ctx, obj_id)


@route("/v1/coupons/<obj_id>", methods=["POST"])
def update_coupon(ctx: Ctx, obj_id: str) -> dict:
    """Update a coupon's name or metadata (everything else is fixed)."""
    p = ctx.validate({"name": Str(), "metadata": Meta(), "currency_options": Meta()})
    coupon = load(ctx, obj_id)
    before = dict(coupon)
    apply(coupon, p, ("name",))
    apply_metadata(coupon, p)
    save(ctx, coupon)
    if coupon != before:
        ctx.emit("coupon.updated", coupon, before=before)
    return coupon


@route("/v1/coupons/<obj_id>", methods=["DELETE"])
def delete_coupon(ctx: Ctx, obj_id: str) -> dict:
    """Delete a coupon; existing discounts keep working, new redemptions stop."""
    ctx.validate({})
    coupon = load(ctx, obj_id)
    ctx.store.mark_deleted(obj_id)
    ctx.emit("coupon.deleted", coupon)
    return deleted_stub(coupon)


@route("/v1/coupons", methods=["GET"])
def list_coupons(ctx: Ctx) -> dict:
    """List coupons."""
    p = ctx.validate(LIST_SPEC)
    return paginate(ctx.store, p, "/v1/coupons", obj_type="coupon")
