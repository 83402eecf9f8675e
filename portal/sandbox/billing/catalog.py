"""Read-only views of catalog objects (prices, products, tax rates) as billing needs them."""

from __future__ import annotations

from typing import Any

from ..core.context import Ctx
from ..core.errors import missing
from ..core.store import Store
from .money import format_amount


def price_terms(price: dict[str, Any]) -> dict[str, Any]:
    """Return a price with its tiers visible (stored as the includable ``_tiers``) for math."""
    if price.get("tiers") is None and price.get("_tiers") is not None:
        return {**price, "tiers": price["_tiers"]}
    return price


def is_metered(price: dict[str, Any]) -> bool:
    """Tell whether a recurring price bills usage in arrears from a meter."""
    return (price.get("recurring") or {}).get("usage_type") == "metered"


def recurring_terms(price: dict[str, Any]) -> tuple[str, int]:
    """Return a recurring price's (interval, interval_count)."""
    recurring = price.get("recurring") or {}
    return recurring.get("interval") or "month", int(recurring.get("interval_count") or 1)


def product_name(store: Store, price: dict[str, Any]) -> str:
    """Return the name of a price's product (its id when the product is gone)."""
    product_id = price.get("product")
    if isinstance(product_id, dict):
        return product_id.get("name") or product_id.get("id", "")
    product = store.get(product_id or "", "product", include_deleted=True)
    return (product or {}).get("name") or str(product_id)


def tax_rates(store: Store, ids: list[Any] | None) -> list[dict[str, Any]]:
    """Return the tax rate objects named by ids (objects already loaded pass through)."""
    rates = []
    for ref in ids or []:
        rate = ref if isinstance(ref, dict) else store.get(ref, "tax_rate", include_deleted=True)
        if rate is not None:
            rates.append(rate)
    return rates


def plan_of(price: dict[str, Any]) -> dict[str, Any]:
    """Return the legacy ``plan`` view of a recurring price that subscription items carry."""
    interval, interval_count = recurring_terms(price)
    recurring = price.get("recurring") or {}
    return {
        "active": price.get("active", True),
        "amount": price.get("unit_amount"),
        "amount_decimal": price.get("unit_amount_decimal"),
        "billing_scheme": price.get("billing_scheme", "per_unit"),
        "created": price.get("created"),
        "currency": price.get("currency"),
        "id": price.get("id"),
        "interval": interval,
        "interval_count": interval_count,
        "livemode": False,
        "metadata": price.get("metadata") or {},
        "meter": recurring.get("meter"),
        "nickname": price.get("nickname"),
        "object": "plan",
        "product": price.get("product"),
        "tiers_mode": price.get("tiers_mode"),
        "transform_usage": price.get("transform_quantity"),
        "trial_period_days": recurring.get("trial_period_days"),
        "usage_type": recurring.get("usage_type", "licensed"),
    }


def price_label(price: dict[str, Any]) -> str:
    """Return how an invoice line names a price's rate, e.g. '$20.00 / month'."""
    interval, interval_count = recurring_terms(price)
    per = interval if interval_count == 1 else f"every {interval_count} {interval}s"
    if price.get("billing_scheme") == "tiered" or price.get("unit_amount") is None:
        return f"Tier / {per}" if price.get("recurring") else "Tier"
    rate = format_amount(int(price["unit_amount"]), price.get("currency") or "usd")
    return f"{rate} / {per}" if price.get("recurring") else rate


def tax_rate_objects(ctx: Ctx, ids: list[str] | None, param: str) -> list[dict[str, Any]]:
    """Return tax rate objects for ids, raising 404 for unknown ones."""
    rates = []
    for rate_id in ids or []:
        rate = ctx.store.get(rate_id, "tax_rate")
        if rate is None:
            raise missing("tax rate", rate_id, param)
        rates.append(rate)
    return rates
