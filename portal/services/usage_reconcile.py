"""Reconciling the portal's usage with Stripe's meter event summaries, per account, meter, period.

The portal's side is its hourly aggregates, each hour counted in the period that holds the
hour's last second (where its meter event was sent), with summed reports that were moved into
a later period (their own period was already invoiced) counted where they were sent. Stripe's
side is the meter's event summaries for the same hours, grouped by hour. Summed meters compare
totals, `last` meters the value of the latest hour with usage. A difference means usage that
was not (yet) reported, or reported usage Stripe does not hold.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from portal.extensions import db
from portal.models import Account, Invoice, Subscription, UsageHourly, UsageReport
from portal.services.catalog import load_catalog
from portal.services.stripe_client import stripe_client
from portal.services.usage_reporting import HOUR, hour_of, window_timestamp, window_value


@dataclass(frozen=True)
class UsageDifference:
    """One account, meter and period where the portal and Stripe disagree."""

    account_id: int
    stripe_customer_id: str
    meter: str
    period_start: datetime
    period_end: datetime
    portal: int
    stripe: int

    def describe(self) -> str:
        """Return the difference as one line for people."""
        return (f"account {self.account_id} ({self.stripe_customer_id}) {self.meter} "
                f"{self.period_start:%Y-%m-%d %H:%M}..{self.period_end:%Y-%m-%d %H:%M} UTC: "
                f"portal {self.portal}, Stripe {self.stripe}, "
                f"difference {self.portal - self.stripe:+d}")


def account_periods(account: Account) -> list[tuple[datetime, datetime]]:
    """Return the periods to compare: each subscription's current one and its invoiced ones."""
    periods = set()
    for subscription in db.session.scalars(db.select(Subscription).where(
            Subscription.account_id == account.id)):
        if subscription.current_period_start and subscription.current_period_end:
            periods.add((subscription.current_period_start, subscription.current_period_end))
    for start, end in db.session.execute(db.select(Invoice.period_start, Invoice.period_end).where(
            Invoice.account_id == account.id, Invoice.billing_reason == "subscription_cycle")):
        if start and end and end > start:
            periods.add((start, end))
    return sorted(periods)


def _in_period(moment: datetime, period: tuple[datetime, datetime]) -> bool:
    return period[0] <= moment < period[1]


def _portal_value(account: Account, meter: str, aggregation: str,
                  period: tuple[datetime, datetime]) -> int:
    """Return what Stripe should hold for the period by the portal's records."""
    hours = list(db.session.scalars(db.select(UsageHourly).where(
        UsageHourly.account_id == account.id, UsageHourly.meter == meter,
        UsageHourly.hour >= hour_of(period[0]) - HOUR, UsageHourly.hour < period[1])
        .order_by(UsageHourly.hour)))
    hours = [hourly for hourly in hours if _in_period(window_timestamp(hourly.hour), period)]
    if aggregation == "last":
        return window_value(aggregation, hours[-1]) if hours else 0
    total = sum(window_value(aggregation, hourly) for hourly in hours)
    # Reports sent outside their hour's period move their value to where they were sent.
    for report in db.session.scalars(db.select(UsageReport).where(
            UsageReport.account_id == account.id, UsageReport.meter == meter)):
        sent_at = window_timestamp(report.window_start)
        if report.event_timestamp == sent_at:
            continue
        total += report.value * (_in_period(report.event_timestamp, period)
                                 - _in_period(sent_at, period))
    return total


def _stripe_value(client, meter_id: str, customer_id: str, aggregation: str,
                  period: tuple[datetime, datetime]) -> int:
    """Return Stripe's aggregated usage for the hours whose last second lies in the period."""
    start = hour_of(period[0])
    end = hour_of(period[1])
    if end <= start:
        return 0
    summaries = client.v1.billing.meters.event_summaries.list(meter_id, params={
        "customer": customer_id, "start_time": int(start.timestamp()),
        "end_time": int(end.timestamp()), "value_grouping_window": "hour", "limit": 100})
    values = sorted((summary.start_time, summary.aggregated_value)
                     for summary in summaries.auto_paging_iter())
    if aggregation == "last":
        return int(values[-1][1]) if values else 0
    return int(sum(value for _, value in values))


def reconcile_usage(client=None) -> list[UsageDifference]:
    """Compare every account's usage per meter and period with Stripe's; return the differences."""
    client = client or stripe_client()
    meters = load_catalog()["meters"]
    meter_ids = {meter.event_name: meter.id for meter in
                 client.v1.billing.meters.list(params={"limit": 100}).auto_paging_iter()}
    differences = []
    accounts = db.session.scalars(db.select(Account).where(
        Account.stripe_customer_id.is_not(None)).order_by(Account.id))
    for account in list(accounts):
        for period in account_periods(account):
            for key, meter in meters.items():
                meter_id = meter_ids.get(meter["event_name"])
                portal = _portal_value(account, key, meter["aggregation"], period)
                stripe = _stripe_value(client, meter_id, account.stripe_customer_id,
                                       meter["aggregation"], period) if meter_id else 0
                if portal != stripe:
                    differences.append(UsageDifference(
                        account.id, account.stripe_customer_id, key, period[0], period[1],
                        portal, stripe))
    return differences
