"""Promotion codes: customer-facing codes for a coupon (``promotion.coupon`` in this API)."""

from __future__ import annotations

import re

from ..core.api import route
from ..core.clock import wall_time
from ..core.context import Ctx
from ..core.currencies import check_currency
from ..core.errors import invalid
from ..core.ids import random_token
from ..core.lists import Filter, equals, field, filtered, flag, paginate
from ..core.objects import apply_metadata, fetch, insert, new_object, save
from ..core.params import LIST_SPEC, Anything, Bool, Int, Meta, Str
from ..core.render import renderer
from ..core.store import Store
from ..objects import coupons

RESTRICTIONS = {
    "first_time_transaction": Bool(),
    "minimum_amount": Int(minimum=1),
    "minimum_amount_currency": Str(),
    "currency_options": Anything(),
}
CREATE_SPEC = {
    "promotion": {"type": Str(("coupon",)), "coupon": Str()},
    "code": Str(),
    "active": Bool(),
    "customer": Str(),
    "expires_at": Int(),
    "max_redemptions": Int(minimum=1),
    "metadata": Meta(),
    "restrictions": RESTRICTIONS,
}


def is_active(promo: dict, now: int) -> bool:
    """Tell whether a code can be redeemed: active flag, expiry and redemption limit."""
    if not promo["active"]:
        return False
    if promo.get("expires_at") is not None and now >= promo["expires_at"]:
        return False
    limit = promo.get("max_redemptions")
    return limit is None or promo["times_redeemed"] < limit


@renderer("promotion_code")
def _render(store: Store, promo: dict) -> dict:
    """Show an expired or used-up code as inactive, as Stripe does."""
    promo["active"] = is_active(promo, wall_time())
    return promo


def redeem(
    ctx: Ctx, promo_id: str, param: str = "promotion_code", customer: str | None = None
) -> dict:
    """Count one redemption of a promotion code and of its coupon, checking its restrictions."""
    promo = fetch(ctx, "promotion_code", promo_id, kind="promotion code", param=param)
    if promo.get("customer") and customer and promo["customer"] != customer:
        raise invalid(
            f"This promotion code cannot be redeemed by this customer: {promo['code']}",
            param,
            "promotion_code_customer_not_eligible",
        )
    if not is_active(promo, ctx.now(customer=customer)):
        raise invalid(
            f"This promotion code cannot be redeemed: {promo['code']}",
            param,
            "promotion_code_invalid" if promo["active"] else "coupon_expired",
        )
    coupons.redeem(ctx, promo["promotion"]["coupon"], param, customer=customer)
    promo["times_redeemed"] += 1
    return save(ctx, promo)


@route("/v1/promotion_codes", methods=["POST"])
def create_promotion_code(ctx: Ctx) -> dict:
    """Create a promotion code for a coupon."""
    p = ctx.validate(CREATE_SPEC)
    promotion = p.get("promotion") or {}
    if not promotion.get("coupon"):
        raise invalid(
            "Missing required param: promotion[coupon].", "promotion[coupon]", "parameter_missing"
        )
    coupon = coupons.load(ctx, promotion["coupon"], "promotion[coupon]")
    code = p.get("code") or random_token(8).upper()
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,500}", code):
        raise invalid(
            "Promotion codes may contain only letters, digits, dashes and underscores.", "code"
        )
    clash = ctx.store.select(
        "promotion_code", "lower(json_extract(body, '$.code')) = ?", (code.lower(),)
    )
    if any(is_active(o, ctx.now()) for o in clash):
        raise invalid("An active promotion code with this code already exists.", "code")
    if p.get("customer"):
        fetch(ctx, "customer", p["customer"], kind="customer", param="customer")
    restrictions = p.get("restrictions") or {}
    if restrictions.get("minimum_amount") and not restrictions.get("minimum_amount_currency"):
        raise invalid(
            "You must pass minimum_amount_currency with minimum_amount.",
            "restrictions[minimum_amount_currency]",
        )
    promo = new_object(ctx, "promo", "promotion_code")
    promo.update(
        {
            "active": p.get("active", True),
            "code": code,
            "customer": p.get("customer"),
            "customer_account": None,
            "expires_at": p.get("expires_at"),
            "max_redemptions": p.get("max_redemptions"),
            "metadata": {},
            "promotion": {"coupon": coupon["id"], "type": "coupon"},
            "restrictions": {
                "first_time_transaction": bool(restrictions.get("first_time_transaction")),
                "minimum_amount": restrictions.get("minimum_amount"),
                "minimum_amount_currency": restrictions.get("minimum_amount_currency")
                and check_currency(
                    restrictions["minimum_amount_currency"], "restrictions[minimum_amount_currency]"
                ),
            },
            "times_redeemed": 0,
        }
    )
    apply_metadata(promo, p)
    insert(ctx, promo, customer=p.get("customer"))
    ctx.emit("promotion_code.created", promo)
    return promo


@route("/v1/promotion_codes/<obj_id>", methods=["GET"])
def retrieve_promotion_code(ctx: Ctx, obj_id: str) -> dict:
    """Retrieve a promotion code."""
    ctx.validate({})
    return fetch(ctx, "promotion_code", obj_id, kind="promotion code")


@route("/v1/promotion_codes/<obj_id>", methods=["POST"])
def update_promotion_code(ctx: Ctx, obj_id: str) -> dict:
    """Activate, deactivate or annotate a promotion code."""
    p = ctx.validate(
        {"active": Bool(), "metadata": Meta(), "restrictions": {"currency_options": Anything()}}
    )
    promo = fetch(ctx, "promotion_code", obj_id, kind="promotion code")
    before = dict(promo)
    if "active" in p:
        promo["active"] = p["active"]
    apply_metadata(promo, p)
    save(ctx, promo)
    if promo != before:
        ctx.emit("promotion_code.updated", promo, before=before)
    return promo


FILTERS = {
    "active": flag(field("active")),
    "code": Filter(f"lower({field('code')}) = ?", lambda code: [code.lower()]),
    "coupon": equals(field("promotion.coupon")),
    "customer": equals("customer"),
}


@route("/v1/promotion_codes", methods=["GET"])
def list_promotion_codes(ctx: Ctx) -> dict:
    """List promotion codes filtered by code, coupon, customer or active."""
    p = ctx.validate(
        {**LIST_SPEC, "active": Bool(), "code": Str(), "coupon": Str(), "customer": Str()}
    )
    return paginate(
        ctx.store, p, "/v1/promotion_codes", obj_type="promotion_code", **filtered(p, FILTERS)
    )
