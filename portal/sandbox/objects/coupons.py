"""Coupons: whether one can still be redeemed, and counting a redemption."""

from __future__ import annotations

from ..core.context import Ctx
from ..core.errors import invalid
from ..core.objects import fetch, save


def is_valid(coupon: dict, now: int) -> bool:
    """Tell whether a coupon can still be redeemed at ``now``."""
    if coupon.get("redeem_by") is not None and now > coupon["redeem_by"]:
        return False
    if (
        coupon.get("max_redemptions") is not None
        and coupon["times_redeemed"] >= coupon["max_redemptions"]
    ):
        return False
    return True


def load(ctx: Ctx, obj_id: str, param: str | None = "id") -> dict:
    """Return a coupon or raise 404 "No such coupon"."""
    return fetch(ctx, "coupon", obj_id, kind="coupon", param=param)


def redeem(ctx: Ctx, coupon_id: str, param: str = "coupon", customer: str | None = None) -> dict:
    """Count one redemption of a coupon (at the customer's clock time), refusing an invalid one."""
    coupon = load(ctx, coupon_id, param)
    if not is_valid(coupon, ctx.now(customer=customer)):
        raise invalid(f"Coupon expired: {coupon_id}", param, "coupon_expired")
    coupon["times_redeemed"] += 1
    return save(ctx, coupon)
