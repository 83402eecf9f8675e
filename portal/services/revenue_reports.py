"""Revenue reports over the mirror, one currency at a time: MRR, movements, customers, plans.

Every figure is an SQL aggregate (grouped by month, one currency) over `mrr_changes`,
`subscription_mrr` and `subscriptions`; Python only walks the handful of monthly buckets.
Different currencies are never added together: each query names one currency.

Formulas (written on the report page too):
- MRR at a moment = sum of (new MRR - old MRR) over the currency's changes before it;
  ARR = 12 x MRR.
- Paying customers at a moment = customers that turned paying (new business + reactivation)
  minus those that churned, before it.
- Customer churn rate = customers churned in the range / customer-months at risk (the sum of
  each month's paying customers at its start): the average monthly rate.
- Net MRR retention = (MRR at start + expansion - contraction - churn) / MRR at start;
  gross MRR retention = (MRR at start - contraction - churn) / MRR at start; new business
  and reactivation are left out of both.
- ARPA = MRR / paying customers at the end of the range; lifetime value = ARPA / customer
  churn rate (monthly).
- Trial conversion = trials ending in the range whose subscription went on to pay / trials
  ending in the range.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import and_, case, exists

from portal.extensions import db
from portal.models import MrrChange, Price, Product, Subscription, SubscriptionMrr
from portal.services.report_sql import MonthRange, month_table

GROWTH = ("new_business", "expansion", "reactivation")
LOSS = ("contraction", "churn")
MOVEMENTS = GROWTH + LOSS
_delta = MrrChange.new_mrr - MrrChange.old_mrr


def percent(numerator: int, denominator: int) -> Decimal | None:
    """Return numerator / denominator as a percentage to one decimal, or None for 0/0."""
    if not denominator:
        return None
    return (Decimal(numerator) * 100 / Decimal(denominator)).quantize(
        Decimal("0.1"), rounding=ROUND_HALF_UP)


@dataclass
class MonthMovements:
    """One month of MRR: where it started, each movement (signed, minor units), where it ended."""

    month: str
    opening_mrr: int
    movements: dict[str, int] = field(default_factory=dict)
    customers_start: int = 0
    customers_won: int = 0
    customers_lost: int = 0

    @property
    def closing_mrr(self) -> int:
        """Return the MRR at the end of the month."""
        return self.opening_mrr + sum(self.movements.values())

    @property
    def customers_end(self) -> int:
        """Return the paying customers at the end of the month."""
        return self.customers_start + self.customers_won - self.customers_lost

    @property
    def churn_rate(self) -> Decimal | None:
        """Return the share of the month's starting customers that churned, in percent."""
        return percent(self.customers_lost, self.customers_start)


def mrr_months(currency: str, months: MonthRange) -> list[MonthMovements]:
    """Return each month of the range with its opening MRR, movements and paying customers."""
    won = case((MrrChange.kind.in_(("new_business", "reactivation")), 1), else_=0)
    lost = case((MrrChange.kind == "churn", 1), else_=0)
    before = db.session.execute(
        db.select(db.func.coalesce(db.func.sum(_delta), 0),
                  db.func.coalesce(db.func.sum(won), 0), db.func.coalesce(db.func.sum(lost), 0))
        .where(MrrChange.currency == currency, MrrChange.at < months.start)).one()
    month = month_table(months)
    rows = db.session.execute(
        db.select(month.c.month, MrrChange.kind, db.func.sum(_delta), db.func.count())
        .select_from(month)
        .join(MrrChange, and_(MrrChange.currency == currency, MrrChange.at >= month.c.starts,
                              MrrChange.at < month.c.ends))
        .group_by(month.c.month, MrrChange.kind)).all()
    by_month: dict[str, dict[str, tuple[int, int]]] = {}
    for month, kind, amount, count in rows:
        by_month.setdefault(month, {})[kind] = (int(amount), int(count))
    mrr, customers = int(before[0]), int(before[1]) - int(before[2])
    found = []
    for month in months.months:
        kinds = by_month.get(month, {})
        entry = MonthMovements(
            month, mrr, {kind: kinds.get(kind, (0, 0))[0] for kind in MOVEMENTS},
            customers_start=customers,
            customers_won=kinds.get("new_business", (0, 0))[1] + kinds.get(
                "reactivation", (0, 0))[1],
            customers_lost=kinds.get("churn", (0, 0))[1])
        found.append(entry)
        mrr, customers = entry.closing_mrr, entry.customers_end
    return found


@dataclass
class MrrSummary:
    """The range's headline figures for one currency."""

    mrr: int
    arr: int
    customers: int
    opening_mrr: int
    movements: dict[str, int]
    customer_churn_rate: Decimal | None
    net_retention: Decimal | None
    gross_retention: Decimal | None
    arpa: int | None
    lifetime_value: int | None


def summarize(month_rows: list[MonthMovements]) -> MrrSummary:
    """Return MRR, ARR, churn, retention, ARPA and lifetime value over the months given."""
    first, last = month_rows[0], month_rows[-1]
    totals = {kind: sum(row.movements[kind] for row in month_rows) for kind in MOVEMENTS}
    at_risk = sum(row.customers_start for row in month_rows)
    churned = sum(row.customers_lost for row in month_rows)
    opening = first.opening_mrr
    kept = opening + totals["contraction"] + totals["churn"]  # losses are negative
    arpa = last.closing_mrr // last.customers_end if last.customers_end else None
    # LTV = ARPA / monthly churn = ARPA x customer-months at risk / customers churned.
    ltv = arpa * at_risk // churned if arpa is not None and churned else None
    return MrrSummary(
        mrr=last.closing_mrr, arr=12 * last.closing_mrr, customers=last.customers_end,
        opening_mrr=opening, movements=totals,
        customer_churn_rate=percent(churned, at_risk),
        net_retention=percent(kept + totals["expansion"], opening),
        gross_retention=percent(kept, opening), arpa=arpa, lifetime_value=ltv)


@dataclass
class PlanLine:
    """Paying subscriptions and customers on one price, and the MRR they bring, right now."""

    price_id: str | None
    plan: str
    subscriptions: int
    customers: int
    mrr: int


def plans(currency: str) -> list[PlanLine]:
    """Return today's paying subscriptions, customers and MRR by plan price, largest first."""
    rows = db.session.execute(
        db.select(SubscriptionMrr.stripe_price_id, db.func.count(),
                  db.func.count(db.distinct(SubscriptionMrr.stripe_customer_id)),
                  db.func.sum(SubscriptionMrr.mrr))
        .where(SubscriptionMrr.currency == currency, SubscriptionMrr.mrr > 0)
        .group_by(SubscriptionMrr.stripe_price_id)).all()
    names = dict(db.session.execute(
        db.select(Price.stripe_price_id, Product.name + " / " + Price.interval)
        .join(Product).where(Price.stripe_price_id.in_([row[0] for row in rows if row[0]])))
        .all()) if rows else {}
    found = [PlanLine(price, names.get(price, price or "unknown price"), int(subs),
                      int(customers), int(mrr)) for price, subs, customers, mrr in rows]
    return sorted(found, key=lambda line: (-line.mrr, line.plan))


@dataclass
class TrialMonth:
    """Trials that ended in a month and how many went on to pay."""

    month: str
    ended: int
    converted: int

    @property
    def rate(self) -> Decimal | None:
        """Return the conversion rate in percent."""
        return percent(self.converted, self.ended)


def trials(currency: str, months: MonthRange, now: datetime | None = None) -> list[TrialMonth]:
    """Return, per month, the trials that ended and those whose subscription then paid."""
    now = now or datetime.now(UTC)
    paid = exists().where(and_(
        MrrChange.stripe_subscription_id == Subscription.stripe_subscription_id,
        MrrChange.old_mrr == 0, MrrChange.new_mrr > 0))
    month = month_table(months)
    rows = db.session.execute(
        db.select(month.c.month, db.func.count(), db.func.sum(case((paid, 1), else_=0)))
        .select_from(month)
        .join(Subscription, and_(Subscription.currency == currency,
                                 Subscription.trial_end >= month.c.starts,
                                 Subscription.trial_end < month.c.ends))
        .where(Subscription.trial_end < now)
        .group_by(month.c.month)).all()
    counts = {month: (int(ended), int(converted or 0)) for month, ended, converted in rows}
    return [TrialMonth(month, *counts.get(month, (0, 0))) for month in months.months]


def currencies() -> list[str]:
    """Return the currencies that have MRR history, for the report's currency choice."""
    return list(db.session.scalars(
        db.select(MrrChange.currency).distinct().order_by(MrrChange.currency)))
