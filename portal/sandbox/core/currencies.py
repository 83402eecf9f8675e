"""ISO 4217 currencies and their minor-unit exponents.

Amounts are always integers in the currency's minor unit; the exponent tells how many
decimals that unit hides (JPY has none, KWD three). Stripe additionally treats a few
currencies (ISK, UGX ...) as zero-decimal in its API; the table follows Stripe.
"""

from __future__ import annotations

from .errors import invalid

ZERO_DECIMAL = {
    "bif",
    "clp",
    "djf",
    "gnf",
    "isk",
    "jpy",
    "kmf",
    "krw",
    "mga",
    "pyg",
    "rwf",
    "ugx",
    "vnd",
    "vuv",
    "xaf",
    "xof",
    "xpf",
}
THREE_DECIMAL = {"bhd", "jod", "kwd", "omr", "tnd"}
TWO_DECIMAL = {
    "usd",
    "eur",
    "gbp",
    "aud",
    "cad",
    "chf",
    "cny",
    "czk",
    "dkk",
    "hkd",
    "huf",
    "ils",
    "inr",
    "mxn",
    "myr",
    "nok",
    "nzd",
    "php",
    "pln",
    "ron",
    "sek",
    "sgd",
    "thb",
    "try",
    "twd",
    "zar",
    "brl",
    "aed",
    "sar",
    "egp",
    "ngn",
    "kes",
    "idr",
    "cop",
    "ars",
    "pen",
    "uah",
    "bgn",
    "rsd",
    "qar",
    "mad",
    "lkr",
    "pkr",
    "bdt",
}
SUPPORTED = ZERO_DECIMAL | THREE_DECIMAL | TWO_DECIMAL


def exponent(currency: str) -> int:
    """Return the number of decimals in a currency's minor unit (JPY 0, USD 2, KWD 3)."""
    code = currency.lower()
    if code in ZERO_DECIMAL:
        return 0
    if code in THREE_DECIMAL:
        return 3
    return 2


def check_currency(value: str | None, param: str = "currency") -> str:
    """Return a supported lower-case currency code or raise Stripe's invalid-currency error."""
    code = (value or "").lower()
    if code not in SUPPORTED:
        raise invalid(
            f"Invalid currency: {code}. Stripe currently supports these currencies: "
            f"{', '.join(sorted(SUPPORTED))}",
            param,
        )
    return code


def minimum_charge(currency: str) -> int:
    """Return the smallest chargeable amount: about 0.50 USD in the currency's minor unit."""
    return {0: 50, 2: 50, 3: 500}[exponent(currency)]
