"""Proration of subscription item changes, by the second.

Stripe prorates down to the second between the change time (the proration date) and the end of
the current period: a change at `at` inside [start, end) credits the unused time on the old
price and charges the remaining time on the new one, each as its own line.  Each line is

    round_half_up(period_amount * (end - at) / (end - start))

where period_amount is the amount the item bills for one full period (integer minor units) and
the fraction is exact; every line is rounded on its own, halves away from zero, so a preview and
the update that follows it with the same proration date produce identical lines.  Metered
(usage-based) items are never prorated: their usage is billed in arrears.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from .money import round_half_up
from .periods import format_date
from .pricing import amount_for_quantity


@dataclass(frozen=True)
class ItemState:
    """One subscription item as proration sees it: its price, quantity and product name."""

    price: Mapping[str, Any]
    quantity: int
    product_name: str


@dataclass(frozen=True)
class ProrationLine:
    """A proration to bill: negative for unused time credited, positive for remaining time."""

    amount: int
    price: Mapping[str, Any]
    quantity: int
    description: str
    period_start: int
    period_end: int


def proration_factor(period_start: int, period_end: int, at: int) -> Fraction:
    """Return the exact share of the period left after at (0 at the end, 1 at the start)."""
    if period_end <= period_start:
        raise ValueError("empty billing period")
    at = min(max(at, period_start), period_end)
    return Fraction(period_end - at, period_end - period_start)


def prorated_amount(period_amount: int, period_start: int, period_end: int, at: int) -> int:
    """Return the period amount scaled to the time left after at, rounded half away from zero."""
    return round_half_up(period_amount * proration_factor(period_start, period_end, at))


def _is_metered(price: Mapping[str, Any]) -> bool:
    recurring = price.get("recurring") or {}
    return recurring.get("usage_type") == "metered"


def _label(state: ItemState) -> str:
    return f"{state.quantity} × {state.product_name}" if state.quantity != 1 else state.product_name


def item_change_prorations(
    old: ItemState | None, new: ItemState | None, period_start: int, period_end: int, at: int
) -> list[ProrationLine]:
    """Return the proration lines for one item going from old to new at time at."""
    if old is not None and new is not None:
        same_price = old.price.get("id") == new.price.get("id")
        if same_price and old.quantity == new.quantity:
            return []
    if at >= period_end:
        return []
    lines: list[ProrationLine] = []
    when = format_date(at)
    if old is not None and not _is_metered(old.price):
        full = amount_for_quantity(old.price, old.quantity)
        amount = -prorated_amount(full, period_start, period_end, at)
        if full:
            lines.append(
                ProrationLine(
                    amount=amount,
                    price=old.price,
                    quantity=old.quantity,
                    description=f"Unused time on {_label(old)} after {when}",
                    period_start=at,
                    period_end=period_end,
                )
            )
    if new is not None and not _is_metered(new.price):
        full = amount_for_quantity(new.price, new.quantity)
        amount = prorated_amount(full, period_start, period_end, at)
        if full:
            lines.append(
                ProrationLine(
                    amount=amount,
                    price=new.price,
                    quantity=new.quantity,
                    description=f"Remaining time on {_label(new)} after {when}",
                    period_start=at,
                    period_end=period_end,
                )
            )
    return lines
