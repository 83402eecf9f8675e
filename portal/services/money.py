"""Money for people: integer minor units with an ISO 4217 code, formatted with Babel."""
from __future__ import annotations

from decimal import Decimal
from functools import lru_cache

from babel.numbers import format_currency, get_currency_precision


def minor_unit_exponent(currency: str) -> int:
    """Return how many decimal places the currency's minor unit has (JPY 0, USD 2, KWD 3)."""
    return get_currency_precision(currency.upper())


def to_major_units(amount: int, currency: str) -> Decimal:
    """Return an exact Decimal of major units for an integer amount of minor units."""
    if not isinstance(amount, int) or isinstance(amount, bool):
        raise TypeError("money amounts are integer minor units")
    return Decimal(amount).scaleb(-minor_unit_exponent(currency))


# Babel takes about 50 µs per amount, several per page, and pages show the same plan prices
# and totals again and again. `typed` keeps True from passing for 1 (to_major_units refuses it).
@lru_cache(maxsize=4096, typed=True)
def format_money(amount: int, currency: str, locale: str = "en_US") -> str:
    """Format minor units for display, e.g. 1900 usd -> '$19.00', 500 jpy -> '¥500'."""
    return format_currency(to_major_units(amount, currency), currency.upper(), locale=locale)


def format_unit_price(amount_decimal: str, currency: str, locale: str = "en_US") -> str:
    """Format a per-unit price in (fractional) minor units: '0.2' usd -> '$0.002'.

    Stripe's unit_amount_decimal may be finer than the currency's minor unit; the figure keeps
    every significant digit instead of rounding a fifth of a cent away.
    """
    exponent = minor_unit_exponent(currency)
    major = Decimal(str(amount_decimal)).scaleb(-exponent).normalize()
    extra = max(0, -major.as_tuple().exponent - exponent)
    pattern = "¤#,##0" + ("." + "0" * exponent if exponent else "") + "#" * extra
    if not exponent and extra:
        pattern = "¤#,##0." + "#" * extra
    return format_currency(major, currency.upper(), format=pattern, locale=locale,
                           currency_digits=False)
