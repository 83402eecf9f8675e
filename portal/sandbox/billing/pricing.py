"""Amount of a price for a quantity: per_unit, tiered graduated and tiered volume.

A tier is {"up_to": int | None | "inf", "flat_amount": int | None, "unit_amount": int | None,
"unit_amount_decimal": str | None, "flat_amount_decimal": str | None}; the last tier is
unbounded.  Graduated pricing charges each unit at the rate of the tier it falls in, and adds
the flat amount of every tier the quantity reaches.  Volume pricing charges every unit at the
rate of the single tier the total quantity falls in, plus that tier's flat amount.  Decimal
unit amounts are summed exactly and the line is rounded once, halves away from zero.  A
first tier with a flat amount bills it even for a quantity of zero (a base fee), as
docs.stripe.com/subscriptions/pricing-models/tiered-pricing describes for flat rates.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from decimal import Decimal
from fractions import Fraction
from typing import Any

from .money import round_half_up


def _decimal_field(obj: Mapping[str, Any], name: str) -> Fraction:
    """Return the exact value of an amount given as name_decimal (string) or name (int)."""
    decimal_value = obj.get(f"{name}_decimal")
    if decimal_value not in (None, ""):
        return Fraction(Decimal(str(decimal_value)))
    value = obj.get(name)
    return Fraction(int(value)) if value is not None else Fraction(0)


def _upper_bound(tier: Mapping[str, Any]) -> float | int:
    up_to = tier.get("up_to")
    return math.inf if up_to in (None, "inf") else int(up_to)


def transformed_quantity(price: Mapping[str, Any], quantity: int) -> int:
    """Apply the price's transform_quantity (divide_by, round up|down) to a quantity."""
    transform = price.get("transform_quantity")
    if not transform or not transform.get("divide_by"):
        return quantity
    divide_by = int(transform["divide_by"])
    if transform.get("round") == "up":
        return -(-quantity // divide_by)
    return quantity // divide_by


def graduated_amount(tiers: Sequence[Mapping[str, Any]], quantity: int) -> Fraction:
    """Return the exact graduated amount: units at their tier's rate, plus flat fees."""
    total = Fraction(0)
    lower = 0
    for tier in tiers:
        # The first tier's flat amount is due even for no usage (docs: tiered-pricing).
        if quantity <= lower and lower > 0:
            break
        upper = _upper_bound(tier)
        units = min(quantity, upper) - lower
        total += _decimal_field(tier, "unit_amount") * units + _decimal_field(tier, "flat_amount")
        if upper == math.inf:
            break
        lower = int(upper)
    return total


def volume_amount(tiers: Sequence[Mapping[str, Any]], quantity: int) -> Fraction:
    """Return the exact volume amount: all units at the rate of the tier the total falls in."""
    for tier in tiers:
        if quantity <= _upper_bound(tier):
            return _decimal_field(tier, "unit_amount") * quantity + _decimal_field(
                tier, "flat_amount"
            )
    raise ValueError("tiers must end with an unbounded tier")


def exact_amount(price: Mapping[str, Any], quantity: int) -> Fraction:
    """Return the unrounded amount of a price for a quantity, in minor units."""
    if quantity < 0:
        raise ValueError("quantity must not be negative")
    if price.get("billing_scheme") == "tiered":
        tiers = price.get("tiers") or []
        if not tiers:
            raise ValueError("tiered price without tiers")
        if price.get("tiers_mode") == "volume":
            return volume_amount(tiers, quantity)
        return graduated_amount(tiers, quantity)
    return _decimal_field(price, "unit_amount") * transformed_quantity(price, quantity)


def amount_for_quantity(price: Mapping[str, Any], quantity: int) -> int:
    """Return the amount in minor units of a price for a quantity, rounded once."""
    return round_half_up(exact_amount(price, quantity))


def unit_amount_decimal(price: Mapping[str, Any], quantity: int) -> str:
    """Return the effective unit amount of a line as a decimal string with at most 12 places."""
    if quantity == 0:
        exact = _decimal_field(price, "unit_amount")
    else:
        exact = exact_amount(price, quantity) / quantity
    text = format(
        (Decimal(exact.numerator) / Decimal(exact.denominator)).quantize(Decimal("1e-12")), "f"
    )
    return text.rstrip("0").rstrip(".") if "." in text else text
