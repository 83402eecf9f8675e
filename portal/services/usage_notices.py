"""Usage threshold notices at 80% and 100% of a meter's included amount.

Checked after an ingestion request has committed its events, in a transaction of its own, so
the check reads every committed aggregate: of two concurrent requests that together cross a
threshold, the later one to commit sees the crossing. A notice row per account, meter, period
and threshold is inserted with ON CONFLICT DO NOTHING; only the request whose insert wrote the
row queues the email, in the same transaction, so each notice is emailed exactly once.
"""
from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime

from flask import current_app, has_request_context, render_template
from sqlalchemy.dialects import postgresql, sqlite

from portal.extensions import db
from portal.models import Account, UsageNotice
from portal.services.links import external_url
from portal.services.mail import queue_mail
from portal.services.notices import billing_address
from portal.services.usage_summary import (
    BillingPeriod,
    MeterUsage,
    current_period,
    period_usage,
)

THRESHOLDS = (80, 100)


@dataclass(frozen=True)
class ThresholdBanner:
    """The highest threshold a meter has reached in the current period."""

    meter: str
    name: str
    unit: str
    threshold: int
    used: int
    included: int


def thresholds_reached(used: int, included: int) -> list[int]:
    """Return the thresholds `used` has reached (none when nothing is included)."""
    if included <= 0:
        return []
    return [threshold for threshold in THRESHOLDS if used * 100 >= included * threshold]


def _insert_once():
    """Return an INSERT into usage_notices that can do nothing on conflict."""
    dialect = db.session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(UsageNotice.__table__)


def announce_thresholds(account_id: int, meters: set[str] | None = None,
                        now: datetime | None = None) -> list[UsageNotice]:
    """Record and email each threshold newly reached in the current period; commit.

    `meters` limits the check to the meters an ingestion request touched.
    """
    now = now or datetime.now(UTC)
    period, usages = period_usage(account_id, now)
    table = UsageNotice.__table__
    fresh: list[UsageNotice] = []
    for usage in usages:
        if meters is not None and usage.meter not in meters:
            continue
        for threshold in thresholds_reached(usage.used, usage.included):
            statement = (_insert_once().values(
                account_id=account_id, meter=usage.meter, period_start=period.start,
                period_end=period.end, threshold=threshold, used=usage.used,
                included=usage.included, created_at=now)
                .on_conflict_do_nothing(index_elements=[table.c.account_id, table.c.meter,
                                                        table.c.period_start, table.c.threshold])
                .returning(table.c.id))
            notice_id = db.session.scalar(statement)
            if notice_id is not None:
                notice = db.session.get(UsageNotice, notice_id)
                _queue_notice_mail(notice, usage)
                fresh.append(notice)
    db.session.commit()
    return fresh


def _queue_notice_mail(notice: UsageNotice, usage) -> None:
    """Queue the threshold email in the notice's transaction (keyed by the notice)."""
    account = db.session.get(Account, notice.account_id)
    to = billing_address(account)
    if not to:
        return
    context = {"account": account, "notice": notice, "usage": usage,
               "usage_url": external_url("billing.usage")}
    subject = (f"{usage.name}: you have used all that your plan includes"
               if notice.threshold >= 100 else
               f"{usage.name}: you have used {notice.threshold}% of what your plan includes")
    # Templates need a request context (as in services.pdf): ingestion from a command has none.
    with nullcontext() if has_request_context() else current_app.test_request_context("/"):
        text = render_template("mail/usage_threshold.txt", **context)
        html = render_template("mail/usage_threshold.html", **context)
    queue_mail(to=to, subject=subject, text=text, html=html,
               dedupe_key=f"usage-threshold:{notice.id}")


def threshold_banners(account: Account, now: datetime | None = None,
                      period: BillingPeriod | None = None,
                      usages: list[MeterUsage] | None = None) -> list[ThresholdBanner]:
    """Return, per meter, the highest threshold announced in the current period.

    A page that has already read the period and its usage passes them in.
    """
    now = now or datetime.now(UTC)
    period = period or current_period(account, now)
    rows = db.session.scalars(
        db.select(UsageNotice).where(UsageNotice.account_id == account.id,
                                     UsageNotice.period_start == period.start)
        .order_by(UsageNotice.meter, UsageNotice.threshold))
    highest: dict[str, UsageNotice] = {}
    for notice in rows:
        highest[notice.meter] = notice
    if highest and usages is None:
        usages = period_usage(account.id, now)[1]
    by_meter = {usage.meter: usage for usage in usages or []}
    banners = []
    for meter, notice in highest.items():
        usage = by_meter.get(meter)
        if usage is None:
            continue
        banners.append(ThresholdBanner(meter, usage.name, usage.unit, notice.threshold,
                                       usage.used, usage.included))
    return banners
