"""Reporting usage to Stripe billing meters, one pre-aggregated meter event per closed hour.

For each account with a Stripe customer, each meter and each closed UTC hour of the hourly
aggregates (within Stripe's 35-day limit), the portal records what it sends in a UsageReport
row and commits it before calling Stripe. The event's identifier names the account, meter,
hour and sequence, so a retry or a re-run sends the same identifier and Stripe keeps one copy.

- Summed meters send the hour's sum; `last` meters the hour's last value. The event carries
  the hour's last second as its timestamp, so the hour holding a period start counts in that
  period, as the usage summary counts it.
- Late events for an hour already reported make a correcting event with the next sequence:
  the difference for summed meters, the new value for `last` meters.
- A summed correction for an hour whose period Stripe has already invoiced (a finalized
  renewal invoice covers it) is sent in the current period instead, so it is billed on the
  next invoice rather than lost. A `last` value belongs to its own period and is never moved.
- A row Stripe did not confirm stays pending with its error and is sent again first on the
  next run; until it goes through, its hour gets no further corrections.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import func

from portal.extensions import db
from portal.models import Account, Invoice, Subscription, UsageHourly, UsageReport
from portal.services.catalog import load_catalog
from portal.services.stripe_client import InvalidRequestError, StripeError, stripe_client
from portal.services.subscriptions import live_subscription

HOUR = timedelta(hours=1)
# Stripe refuses meter events older than 35 days.
REPORTABLE_AGE = timedelta(days=35)


@dataclass
class ReportRun:
    """What one reporting run did."""

    sent: int = 0
    corrections: int = 0
    moved: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


def hour_of(moment: datetime) -> datetime:
    """Return the start of the UTC hour holding `moment`."""
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def window_timestamp(window_start: datetime) -> datetime:
    """Return the timestamp a window's meter event carries: the window's last second."""
    return window_start + HOUR - timedelta(seconds=1)


def report_identifier(account_id: int, meter: str, window_start: datetime, sequence: int) -> str:
    """Return the meter event identifier of one report: account, meter, hour and sequence."""
    base = f"usage-{account_id}-{meter}-{int(window_start.timestamp())}"
    return base if sequence == 0 else f"{base}-c{sequence}"


def window_value(aggregation: str, hourly: UsageHourly) -> int:
    """Return the value Stripe should hold for an hour: sum, count or last value."""
    if aggregation == "count":
        return int(hourly.event_count)
    if aggregation == "last":
        return int(hourly.last_quantity)
    return int(hourly.quantity)


def _invoiced(account: Account, subscription: Subscription | None, moment: datetime) -> bool:
    """Return True when a finalized renewal invoice already billed the period holding `moment`."""
    if subscription is None:
        return False
    return db.session.scalar(db.select(func.count(Invoice.id)).where(
        Invoice.account_id == account.id,
        Invoice.stripe_subscription_id == subscription.stripe_subscription_id,
        Invoice.billing_reason == "subscription_cycle",
        Invoice.status.in_(("open", "paid", "uncollectible")),
        Invoice.period_start <= moment, Invoice.period_end > moment)) > 0


def _send(client, report: UsageReport, event_name: str) -> None:
    """Send one meter event; a copy Stripe already holds counts as sent."""
    try:
        client.v1.billing.meter_events.create(params={
            "event_name": event_name,
            "identifier": report.identifier,
            "timestamp": int(report.event_timestamp.timestamp()),
            "payload": {"stripe_customer_id": report.stripe_customer_id,
                        "value": str(report.value)},
        }, options={"idempotency_key": report.identifier})
    except InvalidRequestError as exc:
        # An earlier attempt reached Stripe but its answer was lost: the event is there.
        if "already exists with identifier" not in (exc.user_message or str(exc)):
            raise


def _deliver(client, reports: list[UsageReport], event_names: dict[str, str],
             run: ReportRun) -> None:
    """Send pending reports in order, recording success or the error on each row."""
    for report in reports:
        report.attempts += 1
        try:
            _send(client, report, event_names[report.meter])
        except StripeError as exc:
            report.last_error = (exc.user_message or str(exc) or type(exc).__name__)[:500]
            run.failed += 1
            run.errors.append(f"{report.identifier}: {report.last_error}")
        else:
            report.status = "reported"
            report.reported_at = datetime.now(UTC)
            report.last_error = None
            run.sent += 1
        db.session.commit()


def _reported_state(account_id: int, since: datetime) -> dict[tuple[str, datetime], dict]:
    """Return per (meter, window) what was recorded: summed value, last sequence, pending."""
    state: dict[tuple[str, datetime], dict] = {}
    for report in db.session.scalars(db.select(UsageReport).where(
            UsageReport.account_id == account_id, UsageReport.window_start >= since)
            .order_by(UsageReport.sequence)):
        entry = state.setdefault((report.meter, report.window_start),
                                 {"sum": 0, "sequence": -1, "last": 0, "pending": False})
        entry["sum"] += report.value
        entry["sequence"] = report.sequence
        entry["last"] = report.window_value
        entry["pending"] = entry["pending"] or report.status == "pending"
    return state


def _plan_account(account: Account, meters: dict, now: datetime, run: ReportRun) -> None:
    """Record the reports an account's closed hours need (first reports and corrections)."""
    # One planner per account at a time (a row lock on PostgreSQL): a concurrent run waits,
    # then reads the rows this one committed and plans nothing twice.
    db.session.execute(db.select(Account.id).where(Account.id == account.id).with_for_update())
    since = hour_of(now - REPORTABLE_AGE)
    state = _reported_state(account.id, since)
    subscription = live_subscription(account)
    hours = db.session.scalars(db.select(UsageHourly).where(
        UsageHourly.account_id == account.id, UsageHourly.hour >= since,
        UsageHourly.hour <= now - HOUR).order_by(UsageHourly.meter, UsageHourly.hour))
    for hourly in hours:
        aggregation = meters.get(hourly.meter, {}).get("aggregation")
        if aggregation is None:
            continue
        value = window_value(aggregation, hourly)
        entry = state.get((hourly.meter, hourly.hour))
        if entry is not None and entry["pending"]:
            continue
        if entry is None:
            sequence, event_value = 0, value
        elif aggregation == "last":
            if entry["last"] == value:
                continue
            sequence, event_value = entry["sequence"] + 1, value
        else:
            if entry["sum"] == value:
                continue
            sequence, event_value = entry["sequence"] + 1, value - entry["sum"]
        timestamp = window_timestamp(hourly.hour)
        if aggregation != "last" and _invoiced(account, subscription, timestamp):
            # Stripe has closed that period: bill the difference in the current one.
            timestamp = max(now.replace(microsecond=0), subscription.current_period_start)
            run.moved += 1
        run.corrections += sequence > 0
        db.session.add(UsageReport(
            account_id=account.id, meter=hourly.meter, window_start=hourly.hour,
            sequence=sequence,
            identifier=report_identifier(account.id, hourly.meter, hourly.hour, sequence),
            stripe_customer_id=account.stripe_customer_id, value=event_value,
            window_value=value, event_timestamp=timestamp))


def report_usage(now: datetime | None = None, client=None) -> ReportRun:
    """Report every account's closed hours to Stripe; retry what an earlier run could not send."""
    now = now or datetime.now(UTC)
    client = client or stripe_client()
    meters = load_catalog()["meters"]
    event_names = {key: meter["event_name"] for key, meter in meters.items()}
    run = ReportRun()
    pending = list(db.session.scalars(db.select(UsageReport).where(
        UsageReport.status == "pending").order_by(UsageReport.id)))
    _deliver(client, pending, event_names, run)
    accounts = db.session.scalars(db.select(Account).where(
        Account.stripe_customer_id.is_not(None)).order_by(Account.id))
    for account in list(accounts):
        _plan_account(account, meters, now, run)
        db.session.commit()
    fresh = list(db.session.scalars(db.select(UsageReport).where(
        UsageReport.status == "pending", UsageReport.attempts == 0).order_by(UsageReport.id)))
    _deliver(client, fresh, event_names, run)
    return run
