"""Prices: validation of tiers, recurring terms and lookup keys, and the price constructor."""

from __future__ import annotations

from ..core.context import Ctx
from ..core.currencies import check_currency
from ..core.errors import invalid
from ..core.objects import apply_metadata, fetch, insert, new_object, save
from ..core.params import need
from . import products

INTERVAL_DAYS = {"day": 1, "week": 7, "month": 31, "year": 366}


def _tiers(p: dict) -> list[dict]:
    """Validate tiers: ascending ``up_to`` bounds ending with ``inf``."""
    tiers = p.get("tiers") or []
    if not tiers:
        raise invalid("Tiers are required when `billing_scheme` is `tiered`.", "tiers")
    if not p.get("tiers_mode"):
        raise invalid("Missing required param: tiers_mode.", "tiers_mode")
    out, previous = [], 0
    for i, tier in enumerate(tiers):
        name = f"tiers[{i}]"
        raw = tier.get("up_to")
        last = i == len(tiers) - 1
        if raw == "inf":
            if not last:
                raise invalid("Only the last tier may have `up_to` set to `inf`.", f"{name}[up_to]")
            up_to = None
        else:
            try:
                up_to = int(raw or "")
            except ValueError:
                raise invalid(f"Invalid integer: {raw}", f"{name}[up_to]") from None
            if last:
                raise invalid("The last tier must have `up_to` set to `inf`.", f"{name}[up_to]")
            if up_to <= previous:
                raise invalid("Tiers must be in ascending order of `up_to`.", f"{name}[up_to]")
            previous = up_to
        unit = tier.get("unit_amount")
        flat = tier.get("flat_amount")
        if unit is None and flat is None and not tier.get("unit_amount_decimal"):
            raise invalid("Each tier needs `unit_amount` or `flat_amount`.", name)
        out.append(
            {
                "flat_amount": flat,
                "flat_amount_decimal": None if flat is None else str(flat),
                "unit_amount": unit,
                "unit_amount_decimal": tier.get("unit_amount_decimal")
                or (None if unit is None else str(unit)),
                "up_to": up_to,
            }
        )
    return out


def _recurring(ctx: Ctx, given: dict) -> dict:
    """Validate a recurring block: interval, count within three years, meter for metered prices."""
    need(given, "interval")
    count = given.get("interval_count") or 1
    if INTERVAL_DAYS[given["interval"]] * count > 3 * 366:
        raise invalid(
            "Invalid recurring[interval_count]: the maximum billing period is three "
            "years (3 years, 36 months, or 156 weeks).",
            "recurring[interval_count]",
        )
    usage = given.get("usage_type") or "licensed"
    meter = given.get("meter")
    if usage == "metered" and not meter:
        raise invalid(
            "A meter is required for prices with `recurring[usage_type]=metered`.",
            "recurring[meter]",
        )
    if meter:
        if usage != "metered":
            raise invalid(
                "`recurring[meter]` can only be set when `recurring[usage_type]` is `metered`.",
                "recurring[meter]",
            )
        fetch(ctx, "billing.meter", meter, kind="billing meter", param="recurring[meter]")
    return {
        "interval": given["interval"],
        "interval_count": count,
        "meter": meter,
        "trial_period_days": given.get("trial_period_days"),
        "usage_type": usage,
    }


def claim_lookup_key(ctx: Ctx, price: dict, key: str | None, transfer: bool) -> None:
    """Give ``key`` to this price, moving it from another price only with transfer_lookup_key."""
    if not key:
        return
    holders = [
        o
        for o in ctx.store.select("price", "json_extract(body, '$.lookup_key') = ?", (key,))
        if o["id"] != price["id"]
    ]
    for holder in holders:
        if not transfer:
            raise invalid(f"A price ({holder['id']}) already uses that lookup key.", "lookup_key")
        before = dict(holder)
        holder["lookup_key"] = None
        save(ctx, holder)
        ctx.emit("price.updated", holder, before=before)


def create_price_object(ctx: Ctx, p: dict) -> dict:
    """Validate and store a price (also used for products' default_price_data)."""
    need(p, "currency")
    currency = check_currency(p["currency"])
    if p.get("product") and p.get("product_data"):
        raise invalid(
            "You may only specify one of these parameters: product, product_data.", "product"
        )
    if p.get("product_data"):
        need(p["product_data"], "name")
        product = products.create_product_record(ctx, p["product_data"])
    elif p.get("product"):
        product = products.load(ctx, p["product"], param="product")
    else:
        raise invalid("Missing required param: product.", "product", "parameter_missing")
    scheme = p.get("billing_scheme") or "per_unit"
    tiers: list[dict] | None = None
    unit_amount = p.get("unit_amount")
    decimal = p.get("unit_amount_decimal")
    if scheme == "tiered":
        if unit_amount is not None or decimal:
            raise invalid(
                "`unit_amount` cannot be set when `billing_scheme` is `tiered`.", "unit_amount"
            )
        tiers = _tiers(p)
    else:
        if p.get("tiers") or p.get("tiers_mode"):
            raise invalid("Tiers can only be set when `billing_scheme` is `tiered`.", "tiers")
        custom = p.get("custom_unit_amount") or {}
        if unit_amount is None and not decimal and not custom.get("enabled"):
            raise invalid(
                "Missing required param: unit_amount.", "unit_amount", "parameter_missing"
            )
        if decimal and unit_amount is None and float(decimal).is_integer():
            unit_amount = int(float(decimal))
    recurring = _recurring(ctx, p["recurring"]) if p.get("recurring") else None
    price = new_object(ctx, "price", "price")
    custom = p.get("custom_unit_amount")
    price.update(
        {
            "active": p.get("active", True),
            "billing_scheme": scheme,
            "currency": currency,
            "custom_unit_amount": None
            if not custom
            else {
                "maximum": custom.get("maximum"),
                "minimum": custom.get("minimum"),
                "preset": custom.get("preset"),
            },
            "lookup_key": None,
            "metadata": {},
            "nickname": p.get("nickname"),
            "product": product["id"],
            "recurring": recurring,
            "tax_behavior": p.get("tax_behavior") or "unspecified",
            "tiers_mode": p.get("tiers_mode") if tiers else None,
            "transform_quantity": p.get("transform_quantity")
            and {
                "divide_by": p["transform_quantity"].get("divide_by"),
                "round": p["transform_quantity"].get("round"),
            },
            "type": "recurring" if recurring else "one_time",
            "unit_amount": unit_amount,
            "unit_amount_decimal": decimal or (None if unit_amount is None else str(unit_amount)),
            "_tiers": tiers,
        }
    )
    apply_metadata(price, p)
    claim_lookup_key(ctx, price, p.get("lookup_key"), bool(p.get("transfer_lookup_key")))
    price["lookup_key"] = p.get("lookup_key")
    insert(ctx, price)
    ctx.emit("price.created", price)
    return price


def load(ctx: Ctx, obj_id: str, param: str | None = "id") -> dict:
    """Return a price or raise 404 "No such price"."""
    return fetch(ctx, "price", obj_id, kind="price", param=param)
