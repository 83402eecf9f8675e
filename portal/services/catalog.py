"""The plan catalog file and the local plan rows seeded from it."""
from __future__ import annotations

import tomllib
from pathlib import Path

from portal.extensions import db
from portal.models import Price, Product

CATALOG_PATH = Path(__file__).resolve().parent.parent / "catalog.toml"


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
        unknown = set(plan.get("included", {})) - set(catalog.get("meters", {}))
        if unknown:
            raise ValueError(f"plan {plan['key']}: unknown meters {sorted(unknown)}")
    return catalog


def lookup_key(plan_key: str, interval: str) -> str:
    """Return the Stripe lookup_key of a plan's licensed price, e.g. 'pro_month'."""
    return f"{plan_key}_{interval}"


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
            key = lookup_key(plan["key"], interval)
            price = db.session.scalar(db.select(Price).where(Price.lookup_key == key))
            if price is None:
                price = Price(lookup_key=key, product=product, interval=interval)
                db.session.add(price)
            price.currency = currency
            price.unit_amount = plan[field]
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
