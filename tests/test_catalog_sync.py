"""The catalog file pushed to Stripe: idempotent, amount changes replace and archive prices."""
from __future__ import annotations

import copy

from portal.extensions import db
from portal.models import Price, Product
from portal.services.catalog import load_catalog
from portal.services.catalog_sync import sync_catalog


def test_sync_creates_everything_once(app, stripe_api):
    first = sync_catalog()
    assert "price pro_year" in first.created and "meter api_call" in first.created
    assert first.replaced == []
    again = sync_catalog()
    assert again.created == [] and again.replaced == []
    assert len(again.unchanged) == len(first.created)
    pro = db.session.scalar(db.select(Product).where(Product.key == "pro"))
    remote = stripe_api.v1.products.retrieve(pro.stripe_product_id)
    assert remote.metadata["plan_key"] == "pro"
    found = stripe_api.v1.prices.list(params={"lookup_keys": ["pro_year"]}).data
    assert [price.unit_amount for price in found] == [49000]
    local = db.session.scalar(db.select(Price).where(Price.lookup_key == "pro_year"))
    assert local.stripe_price_id == found[0].id and local.unit_amount == 49000


def test_metered_overage_price_includes_the_plan_allowance(app, stripe_api):
    sync_catalog()
    local = db.session.scalar(db.select(Price).where(Price.lookup_key == "pro_api_calls_year"))
    remote = stripe_api.v1.prices.retrieve(local.stripe_price_id, params={"expand": ["tiers"]})
    assert remote.recurring.usage_type == "metered" and remote.recurring.meter
    assert remote.tiers_mode == "graduated"
    assert remote.tiers[0].up_to == 6_000_000 and remote.tiers[0].unit_amount == 0
    assert str(remote.tiers[1].unit_amount_decimal) == "0.1"
    assert (local.included_units, local.overage_unit_amount_decimal) == (6_000_000, "0.1")


def test_changed_amount_replaces_the_price_and_archives_the_old_one(app, stripe_api):
    sync_catalog()
    old = db.session.scalar(db.select(Price).where(Price.lookup_key == "pro_month"))
    old_id = old.stripe_price_id
    catalog = copy.deepcopy(load_catalog())
    next(plan for plan in catalog["plans"] if plan["key"] == "pro")["monthly"] = 5900
    report = sync_catalog(catalog)
    assert report.replaced == ["price pro_month"]
    archived = stripe_api.v1.prices.retrieve(old_id)
    assert archived.active is False and archived.lookup_key is None
    current = stripe_api.v1.prices.list(params={"lookup_keys": ["pro_month"]}).data
    assert [(price.unit_amount, price.active) for price in current] == [(5900, True)]
    db.session.expire_all()
    rows = {row.stripe_price_id: row for row in db.session.scalars(db.select(Price))}
    assert rows[old_id].active is False and rows[old_id].lookup_key is None
    assert rows[current[0].id].lookup_key == "pro_month" and rows[current[0].id].unit_amount == 5900
    assert sync_catalog(catalog).replaced == []


def test_sync_after_the_sandbox_was_reset_follows_the_new_objects(app, stripe_api):
    from portal.sandbox import reset_state

    sync_catalog()
    old_id = db.session.scalar(
        db.select(Price.stripe_price_id).where(Price.lookup_key == "starter_month"))
    reset_state(app.extensions["stripe_sandbox"])
    report = sync_catalog()
    assert "price starter_month" in report.created
    current = db.session.scalar(db.select(Price).where(Price.lookup_key == "starter_month"))
    assert current.stripe_price_id != old_id
    assert current.stripe_price_id == stripe_api.v1.prices.list(
        params={"lookup_keys": ["starter_month"]}).data[0].id
    stale = db.session.scalar(db.select(Price).where(Price.stripe_price_id == old_id))
    assert stale.lookup_key is None and stale.active is False
