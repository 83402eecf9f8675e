"""Jinja filters: every date, time and amount a page shows, formatted one way with Babel."""
from __future__ import annotations

from datetime import UTC, date, datetime
from functools import lru_cache

from babel.dates import format_datetime as babel_datetime
from babel.numbers import format_decimal, get_group_symbol
from flask import Flask

from portal.services.money import format_money, format_unit_price
from portal.services.statements import failure_reason
from portal.services.tax_ids import tax_id_label

LOCALE = "en_US"
# Day first with a short month name reads the same to every English reader: "29 Nov 2025".
DATE_PATTERN = "dd MMM yyyy"
# Staff pages (audit log, webhook events) need the second something happened.
DATETIME_PATTERN = "dd MMM yyyy, HH:mm:ss 'UTC'"


def _as_utc(moment: datetime) -> datetime:
    """Return `moment` in UTC; a naive datetime is a bug upstream, so refuse it."""
    if not isinstance(moment, datetime):
        raise TypeError(f"expected an aware datetime, got {type(moment).__name__}")
    if moment.tzinfo is None:
        raise ValueError("naive datetime given where an aware UTC time is required")
    return moment.astimezone(UTC)


def format_date(moment: datetime) -> str:
    """Return the UTC calendar day of an aware datetime, e.g. '29 Nov 2025'."""
    return _format_day(_as_utc(moment).date())


@lru_cache(maxsize=4096)
def _format_day(day: date) -> str:
    """Return a calendar day as pages show it (Babel is slow; pages repeat the same days)."""
    return babel_datetime(datetime(day.year, day.month, day.day, tzinfo=UTC), DATE_PATTERN,
                          tzinfo=UTC, locale=LOCALE)


def format_datetime(moment: datetime) -> str:
    """Return an aware datetime as UTC day and time, e.g. '29 Nov 2025, 14:05:09 UTC'."""
    return babel_datetime(_as_utc(moment), DATETIME_PATTERN, tzinfo=UTC, locale=LOCALE)


def format_unix_date(value: int | None) -> str:
    """Return the UTC day of a Stripe unix timestamp (invoice line periods), or ''."""
    return format_date(datetime.fromtimestamp(value, UTC)) if value else ""


def format_line_unit_price(line: dict, currency: str) -> str:
    """Return an invoice line's unit price, fractional minor units kept."""
    unit = line.get("unit_amount_decimal")
    quantity = line.get("quantity")
    if unit is None and quantity and line.get("amount", 0) % quantity == 0:
        # One-off items carry no price: their amount over the quantity is the unit price.
        unit = str(line["amount"] // quantity)
    return format_unit_price(unit, currency) if unit not in (None, "") else ""


GROUP_SYMBOL = get_group_symbol(LOCALE)


def format_number(value: int) -> str:
    """Return a count with the locale's grouping, e.g. 1234567 -> '1,234,567'."""
    if isinstance(value, int) and not isinstance(value, bool):
        # en_US groups by threes (Babel's pattern #,##0): Python's grouping with Babel's
        # symbol gives the same text about thirty times faster, which a chart table of a few
        # hundred figures notices.
        return f"{value:,}".replace(",", GROUP_SYMBOL)
    return format_decimal(value, locale=LOCALE)


def format_units(value: int, unit: str) -> str:
    """Return a count with its unit: '1 API call', '60,000 API calls', '12 GB'."""
    plural = value != 1 and not unit.isupper()
    return f"{format_number(value)} {unit}{'s' if plural else ''}"


def register_template_filters(app: Flask) -> None:
    """Add |date, |datetime, |money(currency), |unit_price and the invoice filters."""
    app.add_template_filter(format_date, "date")
    app.add_template_filter(format_datetime, "datetime")
    app.add_template_filter(format_money, "money")
    app.add_template_filter(format_unit_price, "unit_price")
    app.add_template_filter(format_unix_date, "unix_date")
    app.add_template_filter(format_line_unit_price, "line_unit_price")
    app.add_template_filter(tax_id_label, "tax_id_label")
    app.add_template_filter(failure_reason, "failure_reason")
    app.add_template_filter(format_number, "number")
    app.add_template_filter(format_units, "units")
