"""Discount objects: what applying a coupon or promotion code to a subscription or invoice leaves.

Each applied coupon becomes a ``discount`` object (id ``di_...``) that invoices list in
``discounts`` and reference from ``discount_amounts``; redeeming counts against the coupon's
``max_redemptions``.  A repeating coupon's discount ends ``duration_in_months`` after it
starts (see ``totals.discount_end``).
"""

from __future__ import annotations

from typing import Any

from ..core.context import Ctx
from ..core.ids import new_id
from ..core.objects import fetch
from ..objects import coupons
from .totals import discount_end


def entries_of(p: dict[str, Any]) -> list[dict[str, Any]] | None:
    """Collect discounts[] plus the older coupon / promotion_code parameters (None: not sent)."""
    entries = list(p.get("discounts") or [])
    if p.get("coupon"):
        entries.append({"coupon": p["coupon"]})
    if p.get("promotion_code"):
        entries.append({"promotion_code": p["promotion_code"]})
    if not entries and "discounts" not in p:
        return None
    return entries


def _coupon_of_promotion(promo: dict[str, Any]) -> str:
    ref = (promo.get("promotion") or {}).get("coupon") or promo.get("coupon")
    return ref["id"] if isinstance(ref, dict) else ref or ""


def create_discounts(
    ctx: Ctx,
    entries: list[dict[str, Any]],
    *,
    customer_id: str,
    at: int,
    subscription_id: str | None = None,
    invoice_id: str | None = None,
    clock_id: str | None = None,
) -> list[str]:
    """Redeem each entry's coupon and store its discount object; return the discount ids."""
    ids = []
    for entry in entries:
        if entry.get("discount"):
            ids.append(fetch(ctx, "discount", entry["discount"], kind="discount")["id"])
            continue
        promo = None
        coupon_id = entry.get("coupon") or ""
        if entry.get("promotion_code"):
            promo = fetch(
                ctx,
                "promotion_code",
                entry["promotion_code"],
                kind="promotion code",
                param="promotion_code",
            )
            coupon_id = _coupon_of_promotion(promo)
        coupon = coupons.redeem(ctx, coupon_id, "coupon")
        discount = {
            "id": new_id("di"),
            "object": "discount",
            "checkout_session": None,
            "customer": customer_id,
            "customer_account": None,
            "end": discount_end(coupon, at),
            "invoice": invoice_id,
            "invoice_item": None,
            "promotion_code": promo["id"] if promo else None,
            "source": {"coupon": coupon["id"], "type": "coupon"},
            "start": at,
            "subscription": subscription_id,
            "subscription_item": None,
        }
        ctx.store.insert(discount, customer=customer_id, test_clock=clock_id)
        ids.append(discount["id"])
    return ids
