"""What the Usage page shows: each meter against the plan, overage, projection, daily history.

Every figure comes from the hourly aggregates and the mirror (never raw events, never Stripe).
The period is usage_summary's one definition: the live subscription's billing period, or the
calendar month without one.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import BigInteger, case, cast, func, tuple_

from portal.extensions import db
from portal.models import Account, Price, UsageHourly
from portal.services.catalog import load_catalog, lookup_key
from portal.services.subscriptions import live_subscription, summarize
from portal.services.usage_summary import BillingPeriod, MeterUsage, calendar_month, period_usage

DAY = timedelta(days=1)
PROJECTION_TEXT = ("Projection: linear on the days elapsed: usage so far divided by the days "
                   "elapsed in the period, times the days in the period. Meters that keep the "
                   "last value (storage, seats) project their latest value.")


@dataclass(frozen=True)
class MeterCard:
    """One meter on the page: used against included, overage and its cost, projection."""

    usage: MeterUsage
    percent: int  # of the included amount, not capped (a bar shows at most 100)
    unit_price: str | None  # overage per unit in (fractional) minor units, as Stripe's decimal
    overage_amount: int  # minor units
    projected_overage: int
    projected_overage_amount: int

    @property
    def bar_percent(self) -> int:
        """Return how full the progress bar is drawn (0 to 100)."""
        return min(self.percent, 100)

    @property
    def level(self) -> str:
        """Return 'over', 'near' (80% or more) or 'ok' for the bar's colour and words."""
        if self.usage.included and self.usage.used >= self.usage.included:
            return "over"
        return "near" if self.percent >= 80 else "ok"


@dataclass(frozen=True)
class UsageOverview:
    """The period's meters with money in the subscription's currency."""

    period: BillingPeriod
    cards: list[MeterCard]
    currency: str
    plan_name: str | None
    plan_amount: int  # what the plan itself costs at renewal (0 when it does not renew)
    projected_invoice: int  # plan_amount plus every meter's projected overage amount
    days_elapsed: Decimal
    days_in_period: Decimal
    as_of: datetime


@dataclass(frozen=True)
class DailySeries:
    """One meter's daily figures for this period and the previous one, day by day."""

    meter: str
    name: str
    unit: str
    aggregation: str
    current: list[int | None]  # None for days of this period still to come
    previous: list[int]


def overage_cost(units: int, unit_amount_decimal: str | None) -> int:
    """Return units times a per-unit price in fractional minor units, rounded half up."""
    if not units or not unit_amount_decimal:
        return 0
    total = Decimal(units) * Decimal(unit_amount_decimal)
    return int(total.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _overage_prices(period: BillingPeriod, meters: list[MeterUsage]) -> dict[str, Price]:
    """Return the plan's metered overage price per meter, by the catalog's lookup keys."""
    if period.plan_key is None:
        return {}
    keys = {lookup_key(period.plan_key, period.interval, usage.meter): usage.meter
            for usage in meters}
    rows = db.session.scalars(db.select(Price).where(Price.lookup_key.in_(list(keys))))
    return {keys[price.lookup_key]: price for price in rows}


def usage_overview(account: Account, now: datetime | None = None) -> UsageOverview:
    """Return the current period's cards and the projected next invoice."""
    now = now or datetime.now(UTC)
    period, meters = period_usage(account.id, now)
    summary = summarize(live_subscription(account))
    currency = summary.subscription.currency if summary else None
    prices = _overage_prices(period, meters)
    cards = []
    for usage in meters:
        price = prices.get(usage.meter)
        decimal = price.overage_unit_amount_decimal if price else None
        currency = currency or (price.currency if price else None)
        projected_overage = max(0, usage.projected - usage.included)
        percent = usage.used * 100 // usage.included if usage.included else 0
        cards.append(MeterCard(
            usage=usage, percent=percent, unit_price=decimal,
            overage_amount=overage_cost(usage.overage, decimal),
            projected_overage=projected_overage,
            projected_overage_amount=overage_cost(projected_overage, decimal)))
    plan_amount = (summary.next_invoice_amount or 0) if summary else 0
    elapsed = max(timedelta(0), min(now, period.end) - period.start)
    return UsageOverview(
        period=period, cards=cards, currency=currency or load_catalog()["currency"],
        plan_name=summary.plan_name if summary else None, plan_amount=plan_amount,
        projected_invoice=plan_amount + sum(card.projected_overage_amount for card in cards),
        days_elapsed=_days(elapsed), days_in_period=_days(period.end - period.start),
        as_of=now)


def _days(span: timedelta) -> Decimal:
    """Return a span in days to one decimal place, for people."""
    return (Decimal(int(span.total_seconds())) / 86400).quantize(Decimal("0.1"))


def previous_period(period: BillingPeriod) -> tuple[datetime, datetime]:
    """Return the period before: the previous calendar month, or as long a span just before."""
    if period.source == "calendar_month":
        return calendar_month(period.start - timedelta(microseconds=1))
    return period.start - (period.end - period.start), period.start


def _day_count(start: datetime, end: datetime) -> int:
    """Return how many (started) days the span holds, at least one."""
    return max(1, -(-int((end - start).total_seconds()) // 86400))


def _hour_of(moment: datetime) -> datetime:
    """Return the start of the hour holding `moment`."""
    return moment.replace(minute=0, second=0, microsecond=0)


def _epoch_seconds(column):
    """Return SQL for a timestamp column as whole Unix seconds (no datetime objects back)."""
    if db.session.get_bind().dialect.name == "postgresql":
        return cast(func.extract("epoch", column), BigInteger)
    return cast(func.strftime("%s", column), BigInteger)


def daily_usage(account: Account, overview: UsageOverview) -> list[DailySeries]:
    """Return each meter's daily figures (sums, counts or the day's last value) for both periods.

    Hourly aggregates cannot split an hour, so day n of a period is the n-th 24 hours from the
    hour holding its start (that hour counts in the period, as in the summary). It
    folds the hours into days in SQL (at most one row per meter and day comes back), then
    reads the latest hour of each day of the `last` meters by primary key.
    """
    period = overview.period
    before_start, _before_end = previous_period(period)
    period_hour, before_hour = _hour_of(period.start), _hour_of(before_start)
    current_days = _day_count(period_hour, period.end)
    previous_days = _day_count(before_hour, period_hour)
    seconds = _epoch_seconds(UsageHourly.hour)
    # This period's days count up from 0; the previous period's are numbered -1 - day.
    day = case((UsageHourly.hour >= period_hour,
                (seconds - int(period_hour.timestamp())) // 86400),
               else_=-1 - (seconds - int(before_hour.timestamp())) // 86400).label("day")
    in_window = (UsageHourly.account_id == account.id, UsageHourly.hour >= before_hour,
                 UsageHourly.hour < period.end)
    connection = db.session.connection()
    days_rows = connection.execute(
        db.select(UsageHourly.meter, day, func.sum(UsageHourly.quantity),
                  func.sum(UsageHourly.event_count), func.max(UsageHourly.hour))
        .where(*in_window).group_by(UsageHourly.meter, day)).all()
    kept = {card.usage.meter for card in overview.cards if card.usage.aggregation == "last"}
    latest_hours = [(meter, hour) for meter, _day, _sum, _count, hour in days_rows
                    if meter in kept]
    # A `last` meter shows the value of each day's latest hour: one lookup by primary key each.
    last_values = dict(((meter, hour), value) for meter, hour, value in connection.execute(
        db.select(UsageHourly.meter, UsageHourly.hour, UsageHourly.last_quantity)
        .where(UsageHourly.account_id == account.id,
               tuple_(UsageHourly.meter, UsageHourly.hour).in_(latest_hours)))) \
        if latest_hours else {}
    series = {card.usage.meter: DailySeries(
        card.usage.meter, card.usage.name, card.usage.unit, card.usage.aggregation,
        [0] * current_days, [0] * previous_days) for card in overview.cards}
    for meter, index, quantity, events, hour in days_rows:
        daily = series.get(meter)
        if daily is None:
            continue
        days, index = (daily.current, index) if index >= 0 else (daily.previous, -1 - index)
        if not 0 <= index < len(days):
            continue
        days[index] = int({"sum": quantity, "count": events}.get(
            daily.aggregation, last_values.get((meter, hour), 0)))
    today = int((min(overview.as_of, period.end) - period_hour) / DAY) + 1
    for daily in series.values():
        for index in range(max(0, today), current_days):
            daily.current[index] = None
    return list(series.values())
