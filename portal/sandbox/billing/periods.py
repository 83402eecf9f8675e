"""Billing period arithmetic for recurring prices.

Stripe documents that the billing cycle anchor fixes the day of month (month and year
intervals), the month of year (year intervals) and the weekday (week intervals).  A monthly
anchor on the 31st bills on the last day of shorter months and returns to the 31st when the
month allows it (Jan 31 -> Feb 28/29 -> Mar 31 -> Apr 30).  Every boundary is therefore
computed from the anchor itself, never from the previous (possibly clamped) boundary, and
keeps the anchor's time of day.  All times are unix seconds in UTC.
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime

INTERVALS = ("day", "week", "month", "year")
SECONDS_PER_DAY = 86_400


def _to_dt(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def _to_ts(dt: datetime) -> int:
    return int(dt.timestamp())


def add_months(ts: int, months: int, day_of_month: int | None = None) -> int:
    """Return ts moved by whole months, clamping the anchor day to the target month's length."""
    start = _to_dt(ts)
    day = day_of_month if day_of_month is not None else start.day
    month_index = start.year * 12 + (start.month - 1) + months
    year, month = divmod(month_index, 12)
    month += 1
    last_day = calendar.monthrange(year, month)[1]
    return _to_ts(start.replace(year=year, month=month, day=min(day, last_day)))


def boundary(anchor: int, interval: str, interval_count: int, n: int) -> int:
    """Return the n-th period boundary counted from the billing cycle anchor (n may be negative)."""
    if interval not in INTERVALS:
        raise ValueError(f"unknown interval {interval!r}")
    if interval_count < 1:
        raise ValueError("interval_count must be at least 1")
    steps = n * interval_count
    if interval == "day":
        return anchor + steps * SECONDS_PER_DAY
    if interval == "week":
        return anchor + steps * 7 * SECONDS_PER_DAY
    months = steps if interval == "month" else steps * 12
    return add_months(anchor, months)


def period_containing(anchor: int, interval: str, interval_count: int, at: int) -> tuple[int, int]:
    """Return the [start, end) billing period that contains at."""
    # A first guess from the average period length, corrected by walking at most a few steps.
    approx = (
        {"day": 1, "week": 7, "month": 30, "year": 365}[interval] * interval_count * SECONDS_PER_DAY
    )
    n = (at - anchor) // approx
    while boundary(anchor, interval, interval_count, n) > at:
        n -= 1
    while boundary(anchor, interval, interval_count, n + 1) <= at:
        n += 1
    return (
        boundary(anchor, interval, interval_count, n),
        boundary(anchor, interval, interval_count, n + 1),
    )


def next_period(
    anchor: int, interval: str, interval_count: int, period_end: int
) -> tuple[int, int]:
    """Return the period that starts at period_end, the renewal after a period closes."""
    return period_containing(anchor, interval, interval_count, period_end)


def days(n: int) -> int:
    """Return n days in seconds."""
    return n * SECONDS_PER_DAY


def utc_datetime(ts: int) -> datetime:
    """Return the aware UTC datetime of a unix timestamp."""
    return _to_dt(ts)


def format_date(ts: int) -> str:
    """Return a timestamp as Stripe prints it on invoice lines, e.g. '23 Nov 2026'."""
    dt = _to_dt(ts)
    return f"{dt.day} {dt.strftime('%b %Y')}"
