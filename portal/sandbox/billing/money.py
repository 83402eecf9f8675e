"""Minor-unit money helpers: the one rounding rule and display formatting."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

from babel.numbers import format_currency

from ..core.currencies import exponent


def round_half_up(value: Fraction | Decimal | int) -> int:
    """Round to the nearest minor unit, halves away from zero (the sandbox's one rounding rule)."""
    frac = Fraction(value)
    sign = -1 if frac < 0 else 1
    magnitude = abs(frac)
    whole, remainder = divmod(magnitude.numerator, magnitude.denominator)
    if 2 * remainder >= magnitude.denominator:
        whole += 1
    return sign * whole


def format_amount(amount: int, currency: str) -> str:
    """Format a minor-unit amount for people, e.g. 1050 usd -> '$10.50', 1500 kwd -> 'KWD1.500'."""
    major = Decimal(amount).scaleb(-exponent(currency))
    return format_currency(major, currency.upper(), locale="en_US")
