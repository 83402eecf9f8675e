"""The metered overage prices a subscription carries beside its plan price.

Each plan price has, per catalog meter with overage, a graduated metered price on the same
interval (made by services.catalog_sync). Checkout starts a subscription with all of them, a
plan change swaps them with the plan price, and `attach_metered_prices` gives subscriptions
that predate them their missing items, once.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from portal.extensions import db
from portal.models import Price, Subscription, SubscriptionItem
from portal.models.subscription import LIVE_STATUSES
from portal.services import sync
from portal.services.stripe_client import stripe_client


def overage_prices(price: Price) -> list[Price]:
    """Return the Stripe-linked metered prices that go with a licensed plan price."""
    return [metered for metered in price.product.overage_prices(price.interval)
            if metered.stripe_price_id and metered.interval_count == price.interval_count]


def checkout_line_items(price: Price) -> list[dict]:
    """Return Checkout's line items: the plan price, then its metered prices (no quantity)."""
    return [{"price": price.stripe_price_id, "quantity": 1},
            *({"price": metered.stripe_price_id} for metered in overage_prices(price))]


def metered_items(subscription: Subscription) -> list[SubscriptionItem]:
    """Return the subscription's mirrored metered items."""
    return list(db.session.scalars(db.select(SubscriptionItem).where(
        SubscriptionItem.subscription_id == subscription.id,
        SubscriptionItem.usage_type == "metered").order_by(SubscriptionItem.id)))


def _meter_of(item: SubscriptionItem) -> str | None:
    """Return the catalog meter an item bills, from the mirror or the local price."""
    if item.meter_key:
        return item.meter_key
    price = db.session.scalar(db.select(Price).where(Price.stripe_price_id == item.stripe_price_id))
    return price.meter_key if price else None


def plan_change_items(subscription: Subscription, price: Price) -> list[dict]:
    """Return `items[]` moving a subscription to `price`: swap the plan and metered prices.

    A meter the new plan also bills keeps its item with the new price (its usage stays on the
    item), a meter it no longer bills loses its item, and a new one gains an item.
    """
    items: list[dict] = [{"id": subscription.stripe_item_id, "price": price.stripe_price_id}]
    wanted = {metered.meter_key: metered for metered in overage_prices(price)}
    for item in metered_items(subscription):
        target = wanted.pop(_meter_of(item), None)
        if target is None:
            items.append({"id": item.stripe_item_id, "deleted": True})
        elif target.stripe_price_id != item.stripe_price_id:
            items.append({"id": item.stripe_item_id, "price": target.stripe_price_id})
    items += [{"price": metered.stripe_price_id} for metered in wanted.values()]
    return items


@dataclass
class AttachReport:
    """What attaching metered prices did: subscriptions updated and those already complete."""

    updated: list[str] = field(default_factory=list)
    complete: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def missing_metered_prices(subscription: Subscription) -> list[Price]:
    """Return the metered prices a subscription's plan price has that the subscription lacks."""
    price = db.session.scalar(db.select(Price).where(
        Price.stripe_price_id == subscription.stripe_price_id))
    if price is None:
        return []
    present = {_meter_of(item) for item in metered_items(subscription)}
    return [metered for metered in overage_prices(price) if metered.meter_key not in present]


def attach_metered_prices() -> AttachReport:
    """Give every live subscription the metered prices of its plan it does not have yet.

    Idempotent: a subscription with all its metered items is left alone, and each update
    carries a key naming the subscription and the prices added, so a re-run after a crash
    between Stripe's answer and the mirror's commit is answered from Stripe's replay.
    """
    report = AttachReport()
    client = stripe_client()
    subscriptions = list(db.session.scalars(db.select(Subscription).where(
        Subscription.status.in_(LIVE_STATUSES)).order_by(Subscription.id)))
    for subscription in subscriptions:
        if subscription.stripe_price_id is None:
            report.skipped.append(subscription.stripe_subscription_id)
            continue
        missing = missing_metered_prices(subscription)
        if not missing:
            report.complete.append(subscription.stripe_subscription_id)
            continue
        added = "-".join(sorted(metered.stripe_price_id for metered in missing))
        # Metered items bill usage in arrears: adding one charges nothing now.
        updated = client.v1.subscriptions.update(
            subscription.stripe_subscription_id,
            params={"items": [{"price": metered.stripe_price_id} for metered in missing],
                    "proration_behavior": "none"},
            options={"idempotency_key":
                     f"attach-metered-{subscription.stripe_subscription_id}-{added}"})
        sync.subscription(updated)
        db.session.commit()
        report.updated.append(subscription.stripe_subscription_id)
    return report
