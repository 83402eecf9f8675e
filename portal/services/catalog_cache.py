"""The plan catalog as pages read it: loaded once per process and kept for a few seconds.

Every customer page names a plan and its price, and the plans page lists them all; the
catalog changes only when an operator seeds or syncs it. A snapshot of detached, fully
loaded rows is kept for `CATALOG_CACHE_S` seconds (0 turns it off); a commit in this
process that writes a product or price drops it at once, other processes see the change
when their snapshot expires. Rows in the snapshot are for reading only.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from flask import current_app, has_app_context
from sqlalchemy import event
from sqlalchemy.orm import Session, attributes

from portal.extensions import db
from portal.models import Price, Product

EXTENSION = "catalog_snapshot"


@dataclass
class CatalogSnapshot:
    """Every product with its prices, and every price by its Stripe id, as of `loaded_at`."""

    products: list[Product]
    prices: dict[str, Price] = field(default_factory=dict)
    loaded_at: float = 0.0

    def active_plans(self) -> list[Product]:
        """Return the active plans in catalog order."""
        return [product for product in self.products if product.active]


def _load() -> CatalogSnapshot:
    """Read the catalog in a session of its own and detach it, relationships filled in."""
    with Session(db.engine, expire_on_commit=False) as session:
        products = list(session.scalars(
            db.select(Product).order_by(Product.sort_order, Product.id)
            .options(db.selectinload(Product.prices))))
        session.expunge_all()
    snapshot = CatalogSnapshot(products, loaded_at=time.monotonic())
    for product in products:
        for price in product.prices:
            # The reverse side is not filled by the selectin load; a detached row cannot load it.
            attributes.set_committed_value(price, "product", product)
            if price.stripe_price_id:
                snapshot.prices[price.stripe_price_id] = price
    return snapshot


def catalog_snapshot() -> CatalogSnapshot:
    """Return the current app's catalog snapshot, reloaded once it is older than the setting."""
    ttl = float(current_app.config.get("CATALOG_CACHE_S") or 0)
    snapshot = current_app.extensions.get(EXTENSION)
    if snapshot is None or ttl <= 0 or time.monotonic() - snapshot.loaded_at >= ttl:
        snapshot = _load()
        current_app.extensions[EXTENSION] = snapshot
    return snapshot


def cached_price(stripe_price_id: str | None) -> Price | None:
    """Return a catalog price by Stripe id from the snapshot, or from the database when new."""
    if not stripe_price_id:
        return None
    price = catalog_snapshot().prices.get(stripe_price_id)
    if price is None:
        price = db.session.scalar(
            db.select(Price).where(Price.stripe_price_id == stripe_price_id)
            .options(db.joinedload(Price.product)))
    return price


@event.listens_for(Session, "before_flush")
def _note_catalog_writes(session, _flush_context, _instances) -> None:
    """Remember that this transaction writes the catalog."""
    for row in (*session.new, *session.dirty, *session.deleted):
        if isinstance(row, Product | Price):
            session.info["catalog_written"] = True
            return


@event.listens_for(Session, "after_commit")
def _drop_snapshot(session) -> None:
    """Drop this process's snapshot once a catalog write is committed."""
    if session.info.pop("catalog_written", False) and has_app_context():
        current_app.extensions.pop(EXTENSION, None)
