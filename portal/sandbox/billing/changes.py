"""Subscription item changes: validate ``items[]`` parameters, price them, prorate, apply.

The same plan serves an update and its preview (invoices.create_preview), so the proration
lines a preview shows are computed by the very code that later bills them: with the same
proration_date, the amounts are equal by construction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..core.context import Ctx
from ..core.errors import invalid, missing, required
from ..core.ids import new_id
from . import catalog, proration
from . import subscription_state as subs

PRORATION_BEHAVIORS = ("create_prorations", "none", "always_invoice")


@dataclass
class ItemChange:
    """What one ``items[]`` entry asks for: the item it touches (None: a new one) and its target."""

    item: dict[str, Any] | None
    price: dict[str, Any]
    quantity: int
    deleted: bool = False
    metadata: dict[str, str] | None = None
    tax_rates: list[dict[str, Any]] | None = None
    old_price: dict[str, Any] | None = field(default=None)


def load_price(ctx: Ctx, price_id: str, param: str) -> dict[str, Any]:
    """Return a recurring price usable on a subscription, or raise Stripe's error."""
    price = ctx.store.get(price_id, "price")
    if price is None:
        raise missing("price", price_id, param)
    if price.get("type") != "recurring" or not price.get("recurring"):
        raise invalid(
            "The price specified is set to `type=one_time` but this field only accepts "
            "prices with `type=recurring`.",
            param,
        )
    return price


def check_compatible(
    prices: list[dict[str, Any]], currency: str | None = None
) -> tuple[str, tuple]:
    """Require one currency and one billing interval across a subscription's prices."""
    currencies = {p["currency"] for p in prices} | ({currency} if currency else set())
    if len(currencies) > 1:
        raise invalid("All prices on a subscription must have the same currency.", "items")
    terms = {catalog.recurring_terms(p) for p in prices}
    if len(terms) > 1:
        raise invalid(
            "Currently all prices on a subscription must have the same "
            "`recurring.interval` and `recurring.interval_count`.",
            "items",
        )
    return currencies.pop(), terms.pop()


def plan(
    ctx: Ctx, sub: dict[str, Any] | None, entries: list[dict[str, Any]], prefix: str = "items"
) -> list[ItemChange]:
    """Turn ``items[]`` entries into changes against a subscription's current items."""
    current = {i["id"]: i for i in subs.items_of(ctx.store, sub["id"])} if sub else {}
    result = []
    for n, entry in enumerate(entries):
        name = f"{prefix}[{n}]"
        item = None
        if entry.get("id"):
            item = current.get(entry["id"])
            if item is None:
                raise missing("subscription item", entry["id"], f"{name}[id]")
        elif not entry.get("price"):
            raise required(f"{name}[price]")
        old_price = ctx.store.get(item["price"], "price", include_deleted=True) if item else None
        price = old_price
        if entry.get("price"):
            price = load_price(ctx, entry["price"], f"{name}[price]")
        quantity = entry.get("quantity")
        if quantity is None:
            quantity = (item.get("quantity") if item else None) or 1
        result.append(
            ItemChange(
                item=item,
                price=price or {},
                quantity=quantity,
                deleted=bool(entry.get("deleted")),
                metadata=entry.get("metadata"),
                old_price=old_price,
                tax_rates=catalog.tax_rate_objects(ctx, entry["tax_rates"], f"{name}[tax_rates]")
                if "tax_rates" in entry
                else None,
            )
        )
    return result


def resulting_items(
    ctx: Ctx, sub: dict[str, Any], changes: list[ItemChange]
) -> list[tuple[dict[str, Any], dict[str, Any], int]]:
    """Return the (item, price, quantity) triples the subscription would have after changes."""
    by_id = {c.item["id"]: c for c in changes if c.item}
    triples = []
    for item in subs.items_of(ctx.store, sub["id"]):
        change = by_id.get(item["id"])
        if change is None:
            price = ctx.store.get(item["price"], "price", include_deleted=True) or {}
            triples.append((item, price, item.get("quantity") or 0))
        elif not change.deleted:
            triples.append(
                (
                    {**item, "tax_rates": change.tax_rates or item["tax_rates"]},
                    change.price,
                    change.quantity,
                )
            )
    for change in changes:
        if change.item is None and not change.deleted:
            draft = {
                "id": "si_preview",
                "subscription": sub["id"],
                "tax_rates": change.tax_rates or [],
            }
            triples.append((draft, change.price, change.quantity))
    check_compatible([price for _, price, _ in triples], sub["currency"])
    return triples


def prorations(
    ctx: Ctx, sub: dict[str, Any], changes: list[ItemChange], at: int
) -> list[tuple[proration.ProrationLine, str | None]]:
    """Return the proration lines of changes made at ``at``, with the item each belongs to."""
    start, end = sub["_period_start"], sub["_period_end"]
    if not start <= at <= end:
        raise invalid(
            "The proration_date must be within the current billing period.", "proration_date"
        )
    lines = []
    for change in changes:
        old = new = None
        if change.item is not None:
            old = proration.ItemState(
                change.old_price or {},
                change.item.get("quantity") or 0,
                catalog.product_name(ctx.store, change.old_price or {}),
            )
        if not change.deleted:
            new = proration.ItemState(
                change.price, change.quantity, catalog.product_name(ctx.store, change.price)
            )
        item_id = change.item["id"] if change.item else None
        lines += [
            (line, item_id) for line in proration.item_change_prorations(old, new, start, end, at)
        ]
    return lines


def new_item(
    ctx: Ctx,
    sub: dict[str, Any],
    price: dict[str, Any],
    quantity: int,
    at: int,
    *,
    metadata: dict[str, str] | None = None,
    tax_rates: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Store a new subscription item on the subscription's current period."""
    item = {
        "id": new_id("si"),
        "object": "subscription_item",
        "billing_thresholds": None,
        "created": at,
        "current_period_end": sub["_period_end"],
        "current_period_start": sub["_period_start"],
        "discounts": [],
        "metadata": dict(metadata or {}),
        "plan": None,
        "price": price["id"],
        "quantity": None if catalog.is_metered(price) else quantity,
        "subscription": sub["id"],
        "tax_rates": list(tax_rates or []),
    }
    ctx.store.insert(item, customer=sub["customer"], test_clock=sub.get("test_clock"))
    return item


def apply(ctx: Ctx, sub: dict[str, Any], changes: list[ItemChange], at: int) -> None:
    """Write item changes: new items, new prices or quantities, deletions."""
    for change in changes:
        if change.item is None:
            if not change.deleted:
                new_item(
                    ctx,
                    sub,
                    change.price,
                    change.quantity,
                    at,
                    metadata=change.metadata,
                    tax_rates=change.tax_rates,
                )
            continue
        item = change.item
        if change.deleted:
            ctx.store.mark_deleted(item["id"])
            continue
        item["price"] = change.price["id"]
        item["quantity"] = None if catalog.is_metered(change.price) else change.quantity
        if change.metadata is not None:
            item["metadata"] = {**item["metadata"], **change.metadata}
        if change.tax_rates is not None:
            item["tax_rates"] = change.tax_rates
        ctx.store.save(item)
    remaining = subs.items_of(ctx.store, sub["id"])
    if not remaining:
        raise invalid("A subscription must have at least one active plan.", "items")
    check_compatible(
        [ctx.store.get(i["price"], "price", include_deleted=True) or {} for i in remaining],
        sub["currency"],
    )
