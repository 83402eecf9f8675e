"""Push the catalog file to Stripe (products, prices, billing meters) and mirror what it made.

Idempotent: prices are found by lookup_key. A price whose amount changed cannot be edited at
Stripe, so a new price takes over the lookup_key (transfer_lookup_key) and the old one is
archived; subscriptions on the old price keep it until they change plan.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from portal.extensions import db
from portal.services import sync
from portal.services.audit import record_audit
from portal.services.catalog import included_units, load_catalog, lookup_key, seed_plans
from portal.services.credit_packs import ensure_credit_packs
from portal.services.stripe_client import as_dict, stripe_client


@dataclass
class CatalogSyncReport:
    """What a catalog sync created, replaced and left as it was."""

    created: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)


def _ensure_meter(client, key: str, meter: dict, report: CatalogSyncReport) -> str:
    """Return the id of the billing meter for a catalog meter, creating it when missing."""
    for existing in client.v1.billing.meters.list(params={"limit": 100}).auto_paging_iter():
        if existing.event_name == meter["event_name"]:
            report.unchanged.append(f"meter {meter['event_name']}")
            return existing.id
    created = client.v1.billing.meters.create(
        params={
            "display_name": meter["name"],
            "event_name": meter["event_name"],
            "default_aggregation": {"formula": meter["aggregation"]},
            "customer_mapping": {"event_payload_key": "stripe_customer_id", "type": "by_id"},
            "value_settings": {"event_payload_key": "value"},
        },
        options={"idempotency_key": f"catalog-meter-{meter['event_name']}"},
    )
    report.created.append(f"meter {meter['event_name']}")
    return created.id


def _ensure_product(client, plan: dict, report: CatalogSyncReport):
    """Return the Stripe product of a plan, creating or updating it."""
    found = client.v1.products.search(
        params={"query": f"metadata['plan_key']:'{plan['key']}'", "limit": 1}
    ).data
    params = {"name": plan["name"], "description": plan.get("description") or None,
              "metadata": {"plan_key": plan["key"]}}
    if found:
        product = client.v1.products.update(found[0].id, params=params)
        report.unchanged.append(f"product {plan['key']}")
    else:
        product = client.v1.products.create(
            params=params, options={"idempotency_key": f"catalog-product-{plan['key']}"}
        )
        report.created.append(f"product {plan['key']}")
    sync.product(product)
    return product


def _price_params(product_id: str, currency: str, interval: str, key: str,
                  amount: int | None, meter: tuple[str, str, int, str] | None) -> dict:
    """Return the create params of a licensed price, or of a graduated metered overage price."""
    params = {
        "product": product_id, "currency": currency, "lookup_key": key,
        "transfer_lookup_key": True,
        "recurring": {"interval": interval, "usage_type": "metered" if meter else "licensed"},
    }
    if meter is None:
        params["unit_amount"] = amount
        return params
    meter_key, meter_id, included, rate = meter
    params["recurring"]["meter"] = meter_id
    params["billing_scheme"] = "tiered"
    params["tiers_mode"] = "graduated"
    # The included units are the free first tier; every unit above costs `rate`.
    params["tiers"] = [
        {"up_to": included, "unit_amount": 0},
        {"up_to": "inf", "unit_amount_decimal": rate},
    ] if included > 0 else [{"up_to": "inf", "unit_amount_decimal": rate}]
    params["metadata"] = {"meter_key": meter_key, "included_units": str(included),
                          "overage_unit_amount_decimal": rate}
    return params


def _matches(existing, params: dict) -> bool:
    """Return True when a Stripe price already bills what `params` describe."""
    data = as_dict(existing)
    recurring = data.get("recurring") or {}
    if data["currency"] != params["currency"] or recurring.get("interval") != \
            params["recurring"]["interval"]:
        return False
    if "unit_amount" in params:
        return data.get("unit_amount") == params["unit_amount"]
    return (data.get("metadata") or {}) == params["metadata"]


def _ensure_price(client, params: dict, report: CatalogSyncReport) -> None:
    """Create the price for a lookup_key, or replace it when what it bills changed."""
    key = params["lookup_key"]
    found = client.v1.prices.list(params={"lookup_keys": [key], "active": True, "limit": 1}).data
    if found and _matches(found[0], params):
        sync.price(found[0])
        report.unchanged.append(f"price {key}")
        return
    fingerprint = "-".join(str(value) for value in (
        params.get("unit_amount"), params.get("metadata", {}).get("overage_unit_amount_decimal"),
        params.get("metadata", {}).get("included_units"), found[0].id if found else "first"))
    created = client.v1.prices.create(
        params=params, options={"idempotency_key": f"catalog-price-{key}-{fingerprint}"}
    )
    if found:
        # The lookup_key moved to the new price; archive the old one and mirror both.
        old = client.v1.prices.update(found[0].id, params={"active": False})
        sync.price(old)
        report.replaced.append(f"price {key}")
    else:
        report.created.append(f"price {key}")
    sync.price(created)


def sync_catalog(catalog: dict | None = None) -> CatalogSyncReport:
    """Create or update Stripe products, prices and meters from the catalog; mirror them."""
    catalog = catalog or load_catalog()
    seed_plans(catalog)
    client = stripe_client()
    report = CatalogSyncReport()
    meter_ids = {key: _ensure_meter(client, key, meter, report)
                 for key, meter in catalog["meters"].items()}
    currency = catalog["currency"]
    for plan in catalog["plans"]:
        if plan.get("contact_sales") or not (plan.get("monthly") or plan.get("yearly")):
            continue
        product = _ensure_product(client, plan, report)
        for field_name, interval in (("monthly", "month"), ("yearly", "year")):
            if field_name not in plan:
                continue
            _ensure_price(client, _price_params(
                product.id, currency, interval, lookup_key(plan["key"], interval),
                plan[field_name], None), report)
            for meter_key, rate in plan.get("overage", {}).items():
                meter = (meter_key, meter_ids[meter_key],
                         included_units(catalog, plan, meter_key, interval), str(rate))
                _ensure_price(client, _price_params(
                    product.id, currency, interval, lookup_key(plan["key"], interval, meter_key),
                    None, meter), report)
        db.session.commit()
    ensure_credit_packs(client, catalog, report)
    record_audit(None, "catalog.synced", "catalog", catalog.get("currency", "plans"),
                 details={"created": report.created, "replaced": report.replaced,
                          "unchanged": len(report.unchanged)})
    db.session.commit()
    return report
