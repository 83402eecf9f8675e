"""Money for people: integer minor units with an ISO 4217 code, formatted with Babel."""
from __future__ import annotations

from decimal import Decimal

from babel.numbers import format_currency, get_currency_precision


def minor_unit_exponent(currency: str) -> int:
    """Return how many decimal places the currency's minor unit has (JPY 0, USD 2, KWD 3)."""
    return get_currency_precision(currency.upper())


def to_major_units(amount: int, currency: str) -> Decimal:
    """Return an exact Decimal of major units for an integer amount of minor units."""
    if not isinstance(amount, int) or isinstance(amount, bool):
        raise TypeError("money amounts are integer minor units")
    return Decimal(amount).scaleb(-minor_unit_exponent(currency))


def format_money(amount: int, currency: str, locale: str = "en_US") -> str:
    """Format minor units for display, e.g. 1900 usd -> '$19.00', 500 jpy -> '¥500'."""
    return format_currency(to_major_units(amount, currency), currency.upper(), locale=locale)


def format_unit_amount(unit_amount_decimal: str | None, currency: str,
                       locale: str = "en_US") -> str:
    """Format a unit price in (maybe fractional) minor units: '0.5' usd -> '$0.005'."""
    if unit_amount_decimal in (None, ""):
        return ""
    value = Decimal(str(unit_amount_decimal)).scaleb(-minor_unit_exponent(currency))
    exact = value.as_tuple().exponent < -minor_unit_exponent(currency)
    return format_currency(value, currency.upper(), locale=locale,
                           decimal_quantization=not exact)
