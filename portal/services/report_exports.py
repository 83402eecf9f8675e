"""CSV and JSON exports of the revenue report tables, streamed row by row.

Amounts are integer minor units of the `currency` column. The detail table of MRR changes is
read with `yield_per` (server-side cursor where the driver has one), so an export holds one
chunk of rows in memory however many rows it writes.
"""
from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Iterator

from portal.extensions import db
from portal.models import MrrChange
from portal.services.payment_reports import revenue_months
from portal.services.report_sql import MonthRange
from portal.services.revenue_reports import MOVEMENTS, mrr_months, plans, trials

CHUNK_ROWS = 1000
Table = tuple[list[str], Iterable[tuple]]


def _text(value) -> object:
    """Return a value as an export cell (percentages as text, so no float creeps in)."""
    return None if value is None else (value if isinstance(value, (int, str)) else str(value))


def mrr_table(currency: str, months: MonthRange) -> Table:
    """Return the monthly MRR movements table."""
    header = ["month", "currency", "opening_mrr", *MOVEMENTS, "closing_mrr",
              "customers_start", "customers_end", "customer_churn_rate_percent"]
    rows = ((row.month, currency, row.opening_mrr, *(row.movements[k] for k in MOVEMENTS),
             row.closing_mrr, row.customers_start, row.customers_end, _text(row.churn_rate))
            for row in mrr_months(currency, months))
    return header, rows


def revenue_table(currency: str, months: MonthRange) -> Table:
    """Return the monthly payments, refunds, net revenue and failures table."""
    header = ["month", "currency", "payments", "refunds", "net_revenue", "refund_rate_percent",
              "successful_payments", "failed_payments", "failed_payment_rate_percent",
              "recovered_revenue", "recovered_invoices"]
    rows = ((row.month, currency, row.payments, row.refunds, row.net, _text(row.refund_rate),
             row.payment_count, row.failed_count, _text(row.failed_rate), row.recovered,
             row.recovered_count) for row in revenue_months(currency, months))
    return header, rows


def plans_table(currency: str, months: MonthRange) -> Table:
    """Return today's paying subscriptions, customers and MRR by plan."""
    header = ["plan", "price_id", "currency", "subscriptions", "customers", "mrr"]
    rows = ((line.plan, line.price_id, currency, line.subscriptions, line.customers, line.mrr)
            for line in plans(currency))
    return header, rows


def trials_table(currency: str, months: MonthRange) -> Table:
    """Return the trials that ended per month and how many converted."""
    header = ["month", "currency", "trials_ended", "converted", "conversion_rate_percent"]
    rows = ((row.month, currency, row.ended, row.converted, _text(row.rate))
            for row in trials(currency, months))
    return header, rows


def changes_table(currency: str, months: MonthRange) -> Table:
    """Return every MRR change of the range, oldest first, fetched in chunks."""
    header = ["at", "currency", "stripe_customer_id", "stripe_subscription_id",
              "stripe_price_id", "kind", "old_mrr", "new_mrr", "movement"]
    query = (db.select(MrrChange.at, MrrChange.currency, MrrChange.stripe_customer_id,
                       MrrChange.stripe_subscription_id, MrrChange.stripe_price_id,
                       MrrChange.kind, MrrChange.old_mrr, MrrChange.new_mrr)
             .where(MrrChange.currency == currency, MrrChange.at >= months.start,
                    MrrChange.at < months.end)
             .order_by(MrrChange.at, MrrChange.id)
             .execution_options(yield_per=CHUNK_ROWS, stream_results=True))

    def rows() -> Iterator[tuple]:
        for at, *rest, old, new in db.session.execute(query):
            yield (at.isoformat(), *rest, old, new, new - old)

    return header, rows()


TABLES: dict[str, Callable[[str, MonthRange], Table]] = {
    "mrr": mrr_table,
    "revenue": revenue_table,
    "plans": plans_table,
    "trials": trials_table,
    "mrr_changes": changes_table,
}


def csv_chunks(table: Table) -> Iterator[str]:
    """Yield a table as CSV text, a chunk of rows at a time."""
    header, rows = table
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for count, row in enumerate(rows, start=1):
        writer.writerow(row)
        if count % CHUNK_ROWS == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def json_chunks(table: Table) -> Iterator[str]:
    """Yield a table as a JSON array of objects, a chunk of rows at a time."""
    header, rows = table
    parts = ["["]
    for count, row in enumerate(rows):
        parts.append(("," if count else "") + json.dumps(dict(zip(header, row, strict=True))))
        if len(parts) >= CHUNK_ROWS:
            yield "\n".join(parts)
            parts = [""]
    parts.append("]\n")
    yield "\n".join(parts)
