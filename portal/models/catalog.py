"""The plan catalog: products and their prices, mirrored from Stripe once synced."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, CheckConstraint, ForeignKey, String, true
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.models.types import UTCDateTime, utcnow


class Product(db.Model):
    """A plan customers can choose, keyed by its catalog key (free, starter, pro...)."""

    __tablename__ = "products"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    stripe_product_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(String(1000), default="")
    features: Mapped[list] = mapped_column(JSON, default=list)
    included_usage: Mapped[dict] = mapped_column(JSON, default=dict)
    trial_days: Mapped[int] = mapped_column(default=0)
    contact_sales: Mapped[bool] = mapped_column(default=False)
    sort_order: Mapped[int] = mapped_column(default=0)
    active: Mapped[bool] = mapped_column(default=True, server_default=true())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    prices: Mapped[list[Price]] = relationship(back_populates="product", order_by="Price.id")

    __table_args__ = (CheckConstraint("trial_days >= 0", name="trial_days_not_negative"),)

    @property
    def is_free(self) -> bool:
        """Return True when every active price of this plan is zero."""
        amounts = [price.unit_amount for price in self.prices if price.active]
        return bool(amounts) and all(amount == 0 for amount in amounts)

    def overage_prices(self, interval: str) -> list[Price]:
        """Return the active metered overage prices billed every `interval`."""
        return [price for price in self.prices
                if price.active and price.interval == interval and price.usage_type == "metered"]

    def price_for(self, interval: str) -> Price | None:
        """Return the active licensed price billed every `interval` (month or year)."""
        for price in self.prices:
            if price.active and price.interval == interval and price.usage_type == "licensed":
                return price
        return None


class Price(db.Model):
    """What a plan costs per interval, in integer minor units of its currency."""

    __tablename__ = "prices"

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"), index=True)
    stripe_price_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    # Unique while set; an archived price gives its lookup_key to the price replacing it.
    lookup_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    currency: Mapped[str] = mapped_column(String(3))
    unit_amount: Mapped[int] = mapped_column()
    interval: Mapped[str] = mapped_column(String(10))
    interval_count: Mapped[int] = mapped_column(default=1)
    usage_type: Mapped[str] = mapped_column(String(10), default="licensed")
    # Metered overage prices: which catalog meter, units included free, price per unit above.
    meter_key: Mapped[str | None] = mapped_column(String(64))
    included_units: Mapped[int | None] = mapped_column()
    overage_unit_amount_decimal: Mapped[str | None] = mapped_column(String(32))
    active: Mapped[bool] = mapped_column(default=True, server_default=true())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    product: Mapped[Product] = relationship(back_populates="prices")

    __table_args__ = (
        CheckConstraint("unit_amount >= 0", name="unit_amount_not_negative"),
        CheckConstraint("interval IN ('day', 'week', 'month', 'year')", name="interval_known"),
        CheckConstraint("interval_count > 0", name="interval_count_positive"),
        CheckConstraint("usage_type IN ('licensed', 'metered')", name="usage_type_known"),
        CheckConstraint("currency = lower(currency)", name="currency_lowercase"),
    )
