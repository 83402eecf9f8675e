"""Money that moved, per month and currency: payments, refunds, failures and recoveries.

From the mirrored charges, refunds and invoices, each an SQL aggregate grouped by month:
- payments: succeeded charges' captured amounts, by the charge's Stripe `created`;
- refunds: refunds that succeeded or are pending, by the refund's `created`;
- net revenue = payments - refunds; refund rate = refunds / payments;
- failed-payment rate = failed charges / all charge attempts (succeeded and failed);
- recovered revenue: invoices paid after at least one failed attempt (attempt_count > 1),
  by the time they were paid.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import and_, case

from portal.extensions import db
from portal.models import Charge, Invoice, Refund
from portal.services.report_sql import MonthRange, month_table
from portal.services.revenue_reports import percent

REFUND_COUNTED = ("succeeded", "pending")


@dataclass
class RevenueMonth:
    """One month's payments, refunds, failed attempts and recovered invoices (minor units)."""

    month: str
    payments: int = 0
    payment_count: int = 0
    failed_count: int = 0
    refunds: int = 0
    recovered: int = 0
    recovered_count: int = 0

    @property
    def net(self) -> int:
        """Return payments minus refunds."""
        return self.payments - self.refunds

    @property
    def refund_rate(self) -> Decimal | None:
        """Return refunds as a share of payments, in percent."""
        return percent(self.refunds, self.payments)

    @property
    def failed_rate(self) -> Decimal | None:
        """Return failed attempts as a share of all attempts, in percent."""
        return percent(self.failed_count, self.payment_count + self.failed_count)


def revenue_months(currency: str, months: MonthRange) -> list[RevenueMonth]:
    """Return payments, refunds, failures and recoveries for each month of the range."""
    found = {month: RevenueMonth(month) for month in months.months}
    month = month_table(months)

    def in_month(column):
        return and_(column >= month.c.starts, column < month.c.ends)

    succeeded = Charge.status == "succeeded"
    for name, amount, paid, failed in db.session.execute(
            db.select(month.c.month,
                      db.func.sum(case((succeeded, Charge.amount_captured), else_=0)),
                      db.func.sum(case((succeeded, 1), else_=0)),
                      db.func.sum(case((Charge.status == "failed", 1), else_=0)))
            .select_from(month)
            .join(Charge, and_(Charge.currency == currency, in_month(Charge.stripe_created)))
            .group_by(month.c.month)):
        row = found[name]
        row.payments, row.payment_count, row.failed_count = (
            int(amount or 0), int(paid or 0), int(failed or 0))
    for name, amount in db.session.execute(
            db.select(month.c.month, db.func.sum(Refund.amount))
            .select_from(month)
            .join(Refund, and_(Refund.currency == currency, in_month(Refund.stripe_created),
                               Refund.status.in_(REFUND_COUNTED)))
            .group_by(month.c.month)):
        found[name].refunds = int(amount or 0)
    for name, amount, count in db.session.execute(
            db.select(month.c.month, db.func.sum(Invoice.amount_paid), db.func.count())
            .select_from(month)
            .join(Invoice, and_(Invoice.currency == currency, Invoice.attempt_count > 1,
                                in_month(Invoice.paid_at)))
            .group_by(month.c.month)):
        found[name].recovered, found[name].recovered_count = int(amount or 0), int(count)
    return list(found.values())


def revenue_totals(rows: list[RevenueMonth]) -> RevenueMonth:
    """Return the range's totals as one row (its month is 'total')."""
    total = RevenueMonth("total")
    for row in rows:
        total.payments += row.payments
        total.payment_count += row.payment_count
        total.failed_count += row.failed_count
        total.refunds += row.refunds
        total.recovered += row.recovered
        total.recovered_count += row.recovered_count
    return total
