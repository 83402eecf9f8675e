"""The current billing period's usage per meter, read from the hourly aggregates only."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func

from portal.extensions import db
from portal.models import Account, Price, UsageHourly
from portal.services.catalog import included_units, load_catalog
from portal.services.subscriptions import live_subscription


@dataclass(frozen=True)
class BillingPeriod:
    """The period usage counts against, where it comes from, and the plan that applies."""

    start: datetime
    end: datetime
    source: str  # "subscription" or "calendar_month"
    plan_key: str | None
    interval: str


@dataclass(frozen=True)
class MeterUsage:
    """One meter's usage in the period against what the plan includes."""

    meter: str
    name: str
    unit: str
    aggregation: str
    used: int
    included: int
    overage: int
    projected: int


def calendar_month(now: datetime) -> tuple[datetime, datetime]:
    """Return the UTC calendar month around `now`."""
    start = now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = start.replace(year=start.year + 1, month=1) if start.month == 12 \
        else start.replace(month=start.month + 1)
    return start, end


def current_period(account: Account, now: datetime) -> BillingPeriod:
    """Return the live subscription's current period, or the calendar month without one."""
    subscription = live_subscription(account)
    if (subscription is not None and subscription.current_period_start is not None
            and subscription.current_period_end is not None):
        price = db.session.scalar(db.select(Price).where(
            Price.stripe_price_id == subscription.stripe_price_id)) \
            if subscription.stripe_price_id else None
        return BillingPeriod(subscription.current_period_start, subscription.current_period_end,
                             "subscription", price.product.key if price else None,
                             price.interval if price else "month")
    start, end = calendar_month(now)
    return BillingPeriod(start, end, "calendar_month", None, "month")


def linear_projection(used: int, period: BillingPeriod, now: datetime) -> int:
    """Return used / elapsed * period length, rounded down (no projection before any time)."""
    elapsed = (min(now, period.end) - period.start).total_seconds()
    length = (period.end - period.start).total_seconds()
    if elapsed <= 0 or length <= 0:
        return used
    return int(used * length // elapsed)


# An hour belongs to the period holding its last second.
LAST_SECOND = timedelta(seconds=3599)


def _hour_of(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def period_usage(account_id: int, now: datetime | None = None
                 ) -> tuple[BillingPeriod, list[MeterUsage]]:
    """Return the current period and each catalog meter's used, included, overage, projected.

    Aggregates are hourly: the hour holding the period start counts in the period, so the
    hour holding its end counts in the next one (each hour in exactly one period, where its
    meter event, stamped with the hour's last second, is billed).
    Summed meters project linearly on the time elapsed; `last` meters project their
    latest value.
    """
    now = now or datetime.now(UTC)
    account = db.session.get(Account, account_id)
    catalog = load_catalog()
    period = current_period(account, now)
    in_period = (UsageHourly.account_id == account.id,
                 UsageHourly.hour >= _hour_of(period.start),
                 UsageHourly.hour < period.end - LAST_SECOND)
    sums, counts = {}, {}
    for key, quantity, events in db.session.execute(
            db.select(UsageHourly.meter, func.sum(UsageHourly.quantity),
                      func.sum(UsageHourly.event_count))
            .where(*in_period).group_by(UsageHourly.meter)):
        sums[key], counts[key] = int(quantity), int(events)
    latest_hour = (db.select(UsageHourly.meter, func.max(UsageHourly.hour).label("hour"))
                   .where(*in_period).group_by(UsageHourly.meter).subquery())
    latest = dict(db.session.execute(
        db.select(UsageHourly.meter, UsageHourly.last_quantity)
        .join(latest_hour, (latest_hour.c.meter == UsageHourly.meter)
              & (latest_hour.c.hour == UsageHourly.hour))
        .where(UsageHourly.account_id == account.id)).all())
    plan = next((plan for plan in catalog["plans"] if plan["key"] == period.plan_key), None)
    meters = []
    for key, meter in catalog["meters"].items():
        summed = meter["aggregation"] in ("sum", "count")
        used = {"sum": sums, "count": counts}.get(meter["aggregation"], latest).get(key, 0)
        used = int(used)
        included = included_units(catalog, plan, key, period.interval) if plan else 0
        meters.append(MeterUsage(
            meter=key, name=meter["name"], unit=meter.get("unit") or meter["name"],
            aggregation=meter["aggregation"], used=used, included=included,
            overage=max(0, used - included),
            projected=linear_projection(used, period, now) if summed else used))
    return period, meters
