"""The plan catalog file and the local plan rows seeded from it."""
from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from portal.extensions import db
from portal.models import Price, Product

CATALOG_PATH = Path(__file__).resolve().parent.parent / "catalog.toml"


@dataclass(frozen=True)
class YearlySavings:
    """What paying yearly saves against twelve monthly payments, in minor units."""

    amount: int
    currency: str
    months_free: int | None


def load_catalog(path: Path = CATALOG_PATH) -> dict:
    """Read and check the catalog file; raise ValueError naming the first problem."""
    with path.open("rb") as handle:
        catalog = tomllib.load(handle)
    currency = catalog.get("currency", "")
    if len(currency) != 3 or currency != currency.lower():
        raise ValueError(f"catalog currency must be a lowercase ISO code, got {currency!r}")
    keys = [plan["key"] for plan in catalog.get("plans", [])]
    if len(keys) != len(set(keys)):
        raise ValueError("catalog plan keys must be unique")
    for plan in catalog["plans"]:
        for interval in ("monthly", "yearly"):
            amount = plan.get(interval)
            if amount is not None and (not isinstance(amount, int) or amount < 0):
                raise ValueError(f"plan {plan['key']}: {interval} must be a whole amount >= 0")
        unknown = (set(plan.get("included", {})) | set(plan.get("overage", {}))) - set(
            catalog.get("meters", {})
        )
        if unknown:
            raise ValueError(f"plan {plan['key']}: unknown meters {sorted(unknown)}")
    return catalog


def meter_units(catalog: dict | None = None) -> dict[str, str]:
    """Return each meter's unit name as the catalog spells it for customers ('API call')."""
    catalog = catalog or _catalog_file(CATALOG_PATH, CATALOG_PATH.stat().st_mtime_ns)
    return {key: meter.get("unit") or meter["name"] for key, meter in catalog["meters"].items()}


@lru_cache(maxsize=4)
def _catalog_file(path: Path, _modified_ns: int) -> dict:
    """Return the parsed catalog file, read again only when it changes (pages ask often)."""
    return load_catalog(path)


def plan_price(lookup_key: str) -> Price | None:
    """Return the active, Stripe-linked licensed price a customer may pick by lookup_key."""
    price = db.session.scalar(db.select(Price).where(
        Price.lookup_key == lookup_key, Price.active, Price.usage_type == "licensed"))
    if price is None or price.stripe_price_id is None or price.product.contact_sales:
        return None
    return price


def lookup_key(plan_key: str, interval: str, meter_key: str | None = None) -> str:
    """Return a price's Stripe lookup_key: 'pro_month', or 'pro_api_calls_month' for overage."""
    if meter_key:
        return f"{plan_key}_{meter_key}_{interval}"
    return f"{plan_key}_{interval}"


def included_units(catalog: dict, plan: dict, meter_key: str, interval: str) -> int:
    """Return the units a plan includes per billing period (summed meters scale with it)."""
    monthly = int(plan.get("included", {}).get(meter_key, 0))
    summed = catalog["meters"][meter_key]["aggregation"] in ("sum", "count")
    return monthly * 12 if interval == "year" and summed else monthly


def _upsert_price(key: str, product: Product) -> Price | None:
    """Return the unsynced local price with this lookup_key (created if missing).

    Returns None once the price is linked to Stripe: from then on only the Stripe sync
    (services.catalog_sync) changes its amount, so the row never claims a price it is not.
    """
    price = db.session.scalar(db.select(Price).where(Price.lookup_key == key))
    if price is None:
        price = Price(lookup_key=key, product=product)
        db.session.add(price)
    return None if price.stripe_price_id else price


def seed_plans(catalog: dict | None = None) -> int:
    """Create or update local plans and prices from the catalog; return rows written."""
    catalog = catalog or load_catalog()
    currency = catalog["currency"]
    written = 0
    for order, plan in enumerate(catalog["plans"]):
        product = db.session.scalar(db.select(Product).where(Product.key == plan["key"]))
        if product is None:
            product = Product(key=plan["key"])
            db.session.add(product)
        product.name = plan["name"]
        product.description = plan.get("description", "")
        product.features = list(plan.get("features", []))
        product.included_usage = dict(plan.get("included", {}))
        product.trial_days = plan.get("trial_days", 0)
        product.contact_sales = plan.get("contact_sales", False)
        product.sort_order = order
        written += 1
        for field, interval in (("monthly", "month"), ("yearly", "year")):
            if field not in plan:
                continue
            price = _upsert_price(lookup_key(plan["key"], interval), product)
            if price is not None:
                price.interval = interval
                price.currency = currency
                price.unit_amount = plan[field]
                written += 1
            for meter_key, rate in plan.get("overage", {}).items():
                overage = _upsert_price(lookup_key(plan["key"], interval, meter_key), product)
                if overage is None:
                    continue
                overage.interval = interval
                overage.currency = currency
                overage.unit_amount = 0
                overage.usage_type = "metered"
                overage.meter_key = meter_key
                overage.included_units = included_units(catalog, plan, meter_key, interval)
                overage.overage_unit_amount_decimal = str(rate)
                written += 1
    db.session.commit()
    return written


def list_plans() -> list[Product]:
    """Return the active plans in catalog order with their prices loaded."""
    query = (
        db.select(Product)
        .where(Product.active)
        .order_by(Product.sort_order)
        .options(db.selectinload(Product.prices))
    )
    return list(db.session.scalars(query))


def yearly_savings(plan: Product) -> YearlySavings | None:
    """Return what a plan's yearly price saves against twelve monthly ones, if anything."""
    monthly, yearly = plan.price_for("month"), plan.price_for("year")
    if monthly is None or yearly is None or monthly.currency != yearly.currency:
        return None
    saved = 12 * monthly.unit_amount - yearly.unit_amount
    if saved <= 0:
        return None
    # "2 months free" only when the saving is exactly whole months; otherwise just the amount.
    whole_months = saved // monthly.unit_amount if saved % monthly.unit_amount == 0 else None
    return YearlySavings(amount=saved, currency=yearly.currency, months_free=whole_months)
