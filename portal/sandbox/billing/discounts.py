"""Discount objects: what applying a coupon or promotion code to a subscription or invoice leaves.

Each applied coupon becomes a ``discount`` object (id ``di_...``) that invoices list in
``discounts`` and reference from ``discount_amounts``; redeeming counts against the coupon's
``max_redemptions``.  A repeating coupon's discount ends ``duration_in_months`` after it
starts (see ``totals.discount_end``).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from ..core.context import Ctx
from ..core.currencies import exponent
from ..core.errors import invalid
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
            _check_first_time(ctx, promo, customer_id)
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


def _has_paid_before(ctx: Ctx, customer_id: str) -> bool:
    """Return whether the customer has a successful payment or a paid invoice."""
    charge = ctx.store.select(
        "charge",
        "customer = ? AND json_extract(body, '$.status') = 'succeeded'",
        (customer_id,),
    )
    invoice = ctx.store.select(
        "invoice",
        "customer = ? AND json_extract(body, '$.status') = 'paid'"
        " AND json_extract(body, '$.amount_paid') > 0",
        (customer_id,),
    )
    return bool(charge or invoice)


def _check_first_time(ctx: Ctx, promo: dict[str, Any], customer_id: str) -> None:
    """Refuse a first-time-only promotion code for a customer who has paid before.

    docs.stripe.com/api/promotion_codes/object: restrictions.first_time_transaction allows the
    code only for customers without any successful payments or invoices.
    """
    if (promo.get("restrictions") or {}).get("first_time_transaction") and _has_paid_before(
        ctx, customer_id
    ):
        raise invalid(
            f"This promotion code ({promo['code']}) can only be redeemed on a customer's first "
            "transaction, and this customer has prior transactions.",
            "promotion_code",
        )


def check_minimum_amount(ctx: Ctx, discount_ids: list[str], invoice: dict[str, Any]) -> None:
    """Refuse a promotion code whose minimum amount the invoice does not reach.

    docs.stripe.com/api/promotion_codes/object: restrictions.minimum_amount (in
    minimum_amount_currency) is the purchase amount the code needs before discounts.
    """
    for discount_id in discount_ids:
        discount = ctx.store.get(discount_id, "discount") or {}
        promo = ctx.store.get(discount.get("promotion_code") or "", "promotion_code")
        restrictions = (promo or {}).get("restrictions") or {}
        minimum = restrictions.get("minimum_amount")
        currency = restrictions.get("minimum_amount_currency")
        if not minimum or currency != invoice["currency"]:
            continue
        if invoice["subtotal"] < minimum:
            raise invalid(
                f"This promotion code ({promo['code']}) requires a minimum amount of "
                f"{_major(minimum, currency)} {currency.upper()} before discounts.",
                "promotion_code",
            )


def _major(amount: int, currency: str) -> str:
    """Return minor units as a plain major-unit figure, for error messages."""
    digits = exponent(currency)
    return f"{Decimal(amount).scaleb(-digits):.{digits}f}"
