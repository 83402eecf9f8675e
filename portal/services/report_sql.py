"""What the revenue reports share: a range of whole UTC months, and a table of its months."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import String, literal, select, union_all

from portal.models.types import UTCDateTime

# The longest range a report covers, in months: enough for two years beside the last.
MAX_MONTHS = 36


def month_table(months: MonthRange):
    """Return the range's months as a derived table (month 'YYYY-MM', starts, ends).

    Reports join a mirror table to it on `starts <= column < ends`: each month becomes a
    range scan of an index on (currency, column), with no function computed per row, so the
    same query buckets by UTC month on SQLite and PostgreSQL.
    """
    rows = []
    for month in months.months:
        starts = _parse_month(month)
        rows.append(select(literal(month, String()).label("month"),
                           literal(starts, UTCDateTime()).label("starts"),
                           literal(add_months(starts, 1), UTCDateTime()).label("ends")))
    table = rows[0] if len(rows) == 1 else union_all(*rows)
    return table.subquery("months")


def month_start(year: int, month: int) -> datetime:
    """Return the first instant of a month, in UTC."""
    return datetime(year, month, 1, tzinfo=UTC)


def add_months(moment: datetime, months: int) -> datetime:
    """Return the first instant of the month `months` after `moment`'s month."""
    index = moment.year * 12 + moment.month - 1 + months
    return month_start(index // 12, index % 12 + 1)


class RangeError(ValueError):
    """Raised when a requested month range cannot be read."""


@dataclass(frozen=True)
class MonthRange:
    """Whole months from `first` to `last` (both 'YYYY-MM'), the reports' date range."""

    first: str
    last: str

    @classmethod
    def parse(cls, first: str | None, last: str | None, today: date | None = None) -> MonthRange:
        """Read 'YYYY-MM' bounds (defaults: the twelve months ending this one)."""
        today = today or datetime.now(UTC).date()
        default_last = f"{today.year:04d}-{today.month:02d}"
        last = (last or default_last).strip()
        if not first:
            end = _parse_month(last)
            begin = add_months(end, -11)
            first = f"{begin.year:04d}-{begin.month:02d}"
        found = cls(first.strip(), last)
        start, end = _parse_month(found.first), _parse_month(found.last)
        if start > end:
            raise RangeError("The first month must not be after the last month.")
        if len(found.months) > MAX_MONTHS:
            raise RangeError(f"Choose at most {MAX_MONTHS} months.")
        return found

    @property
    def start(self) -> datetime:
        """Return the first instant of the range."""
        return _parse_month(self.first)

    @property
    def end(self) -> datetime:
        """Return the first instant after the range."""
        return add_months(_parse_month(self.last), 1)

    @property
    def months(self) -> list[str]:
        """Return every month of the range as 'YYYY-MM', in order."""
        found, moment = [], self.start
        while moment < self.end:
            found.append(f"{moment.year:04d}-{moment.month:02d}")
            moment = add_months(moment, 1)
        return found


def _parse_month(text: str) -> datetime:
    """Return the first instant of a 'YYYY-MM' month, or raise RangeError."""
    try:
        year, month = (int(part) for part in text.split("-"))
        if not (1970 <= year <= 9999 and 1 <= month <= 12) or len(text) != 7:
            raise ValueError(text)
    except ValueError as exc:
        raise RangeError(f"Give months as YYYY-MM (not {text[:20]!r}).") from exc
    return month_start(year, month)
