"""Revenue figures of a hand-made book: MRR changes written by the sync path, then reports.

The book (tests/revenue_book.py) and every figure below are worked out by hand:

USD prices: Starter 19.00/month or 190.00/year, Pro 49.00/month or 490.00/year.
  MRR of a yearly price = amount / 12, rounded half up to the cent:
  49000 / 12 = 4083.33 -> 4083;  19000 / 12 = 1583.33 -> 1583.
  Pro monthly with 20% off: 4900 * 0.8 = 3920.
EUR prices: 30.00/month (3000) and 300.00/year (30000 / 12 = 2500).

usd  Jan  A new business +1900, B new business +4083, C new business +3920 -> MRR 9903
     Feb  A expansion +3000 (1900 -> 4900), C churn -3920              -> MRR 8983
     Mar  B contraction -2500 (4083 -> 1583)                           -> MRR 6483
     Apr  C reactivation +1900                                         -> MRR 8383, ARR 100596
Paying customers (usd): Jan 3 (A, B, C), Feb 2 (C churned), Mar 2, Apr 3 (C is back).
Over Jan-Apr: customer-months at risk = 0 + 3 + 2 + 2 = 7, churned 1, churn rate 1/7 = 14.3 %;
  ARPA = 8383 // 3 = 2794; lifetime value = ARPA / (1/7) = 2794 * 7 = 19558.
Over Feb-Apr (opening MRR 9903): net retention = (9903 + 3000 - 2500 - 3920) / 9903 = 65.5 %,
  gross retention = (9903 - 2500 - 3920) / 9903 = 35.2 %.

Payments (usd): Jan 1900 (A) + 49000 (B) + 3920 (C) = 54820, refund 500 -> net 54320;
  Feb 1900 (A renews on the 5th); Mar 0 (B's downgrade leaves credit, nothing is charged);
  Apr 1900 (C's new subscription). Payments 58620, refunds 500: refund rate 0.9 %.

eur  Jan  D new business +3000                                         -> MRR 3000
     Mar  D expansion +2500 (a second, yearly subscription)            -> MRR 5500
     Apr  D contraction -3000 (one of two subscriptions canceled)      -> MRR 2500, ARR 30000
"""
from __future__ import annotations

import csv
import io
import json
import re

import pytest

from portal.extensions import db
from portal.models import MrrChange, Role
from portal.services.catalog_sync import sync_catalog
from portal.services.report_sql import MonthRange
from portal.services.revenue_reports import mrr_months, summarize
from tests.helpers import price_id
from tests.invoice_support import signed_in
from tests.revenue_book import BookCustomer, build_book

BOOK_MOVEMENTS = [
    # (currency, day, customer, old MRR, new MRR, kind), all figures by hand (see above)
    ("eur", "2026-01-08", "D", 0, 3000, "new_business"),
    ("eur", "2026-03-05", "D", 0, 2500, "expansion"),
    ("eur", "2026-04-20", "D", 3000, 0, "contraction"),
    ("usd", "2026-01-05", "A", 0, 1900, "new_business"),
    ("usd", "2026-01-12", "B", 0, 4083, "new_business"),
    ("usd", "2026-01-20", "C", 0, 3920, "new_business"),
    ("usd", "2026-02-10", "A", 1900, 4900, "expansion"),
    ("usd", "2026-02-15", "C", 3920, 0, "churn"),
    ("usd", "2026-03-03", "B", 4083, 1583, "contraction"),
    ("usd", "2026-04-06", "C", 0, 1900, "reactivation"),
]


def test_sync_writes_each_mrr_change_of_the_book_classified(app, stripe_api, deliver_webhooks):
    customers = build_book(stripe_api, deliver_webhooks)
    names = {customer.customer_id: name for name, customer in customers.items()}
    rows = db.session.scalars(db.select(MrrChange).order_by(MrrChange.currency, MrrChange.at))
    written = [(row.currency, row.at.date().isoformat(), names[row.stripe_customer_id],
                row.old_mrr, row.new_mrr, row.kind) for row in rows]
    assert written == BOOK_MOVEMENTS
    # Every change belongs to the portal account of its customer.
    accounts = {row.stripe_customer_id: row.account_id
                for row in db.session.scalars(db.select(MrrChange))}
    assert accounts == {c.customer_id: c.account.id for c in customers.values()}



# Each month of Jan-Apr 2026, usd and eur, by hand (see the module docstring):
# month: (opening MRR, {movement: amount}, closing MRR)
USD_MONTHS = {
    "2026-01": (0, {"new_business": 9903}, 9903),
    "2026-02": (9903, {"expansion": 3000, "churn": -3920}, 8983),
    "2026-03": (8983, {"contraction": -2500}, 6483),
    "2026-04": (6483, {"reactivation": 1900}, 8383),
}
EUR_MONTHS = {
    "2026-01": (0, {"new_business": 3000}, 3000),
    "2026-02": (3000, {}, 3000),
    "2026-03": (3000, {"expansion": 2500}, 5500),
    "2026-04": (5500, {"contraction": -3000}, 2500),
}
JAN_APR = {"currency": "usd", "first": "2026-01", "last": "2026-04"}


def _movements(rows) -> dict:
    return {row.month: (row.opening_mrr, {k: v for k, v in row.movements.items() if v},
                        row.closing_mrr) for row in rows}


def _cells(html: str, row_id: str) -> list[str]:
    """Return the text of a table row's cells."""
    row = re.search(rf'<tr data-month="{row_id}">(.*?)</tr>', html, re.S).group(1)
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
    return [re.sub(r"<[^>]+>", "", cell).strip() for cell in cells]


def _figure(html: str, name: str) -> str:
    return re.search(rf'data-figure="{name}">([^<]*)<', html).group(1).strip()


@pytest.fixture
def book(app, stripe_api, deliver_webhooks):
    """Build the hand-made book through the sandbox (about 20 seconds)."""
    return build_book(stripe_api, deliver_webhooks)


def test_book_figures_on_the_dashboard_equal_the_hand_worked_ones(app, book, make_user):
    assert _movements(mrr_months("usd", MonthRange("2026-01", "2026-04"))) == USD_MONTHS
    assert _movements(mrr_months("eur", MonthRange("2026-01", "2026-04"))) == EUR_MONTHS
    summary = summarize(mrr_months("usd", MonthRange("2026-02", "2026-04")))
    assert (summary.mrr, summary.arr, summary.opening_mrr) == (8383, 100596, 9903)
    assert (str(summary.net_retention), str(summary.gross_retention)) == ("65.5", "35.2")

    auditor = signed_in(app, make_user(role=Role.AUDITOR))
    page = auditor.get("/admin/reports/", query_string=JAN_APR)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert _figure(html, "mrr") == "$83.83" and _figure(html, "arr") == "$1,005.96"
    assert _figure(html, "customers") == "3" and _figure(html, "arpa") == "$27.94"
    assert _figure(html, "churn-rate") == "14.3 %" and _figure(html, "ltv") == "$195.58"
    assert _figure(html, "nrr") == "n/a"  # nothing to retain: the book starts in January
    # Month, opening, new business, expansion, reactivation, contraction, churn, closing, ...
    assert _cells(html, "2026-02")[:8] == ["2026-02", "$99.03", "$0.00", "$30.00", "$0.00",
                                           "$0.00", "-$39.20", "$89.83"]
    assert _cells(html, "2026-04")[:8] == ["2026-04", "$64.83", "$0.00", "$0.00", "$19.00",
                                           "$0.00", "$0.00", "$83.83"]
    assert "<svg" in html and "New business" in html and "ChartMogul" in html
    # The euro book is its own dashboard: 25.00 MRR, never added to the dollars.
    euro = auditor.get("/admin/reports/", query_string={**JAN_APR, "currency": "eur"})
    euro_html = euro.get_data(as_text=True)
    assert _figure(euro_html, "mrr") == "€25.00" and _figure(euro_html, "arr") == "€300.00"

    revenue = auditor.get("/admin/reports/revenue", query_string=JAN_APR).get_data(as_text=True)
    assert _figure(revenue, "payments") == "$586.20" and _figure(revenue, "refunds") == "$5.00"
    assert _figure(revenue, "net") == "$581.20" and _figure(revenue, "refund-rate") == "0.9 %"
    assert _cells(revenue, "2026-01")[:4] == ["2026-01", "$548.20", "$5.00", "$543.20"]
    assert _cells(revenue, "2026-03")[:4] == ["2026-03", "$0.00", "$0.00", "$0.00"]

    plans = auditor.get("/admin/reports/customers", query_string=JAN_APR).get_data(as_text=True)
    assert "Pro / month" in plans and "Starter / year" in plans


def test_book_exports_stream_every_table_as_csv_and_json(app, book, make_user):
    admin = signed_in(app, make_user(role=Role.ADMIN))
    response = admin.get("/admin/reports/export",
                         query_string={**JAN_APR, "table": "mrr", "format": "csv"})
    assert response.status_code == 200 and response.is_streamed
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [(r["month"], int(r["closing_mrr"])) for r in rows] == [
        (month, figures[2]) for month, figures in USD_MONTHS.items()]
    changes = admin.get("/admin/reports/export",
                         query_string={**JAN_APR, "table": "mrr_changes", "format": "json"})
    movements = [(row["kind"], row["movement"]) for row in json.loads(changes.get_data())]
    assert movements == [("new_business", 1900), ("new_business", 4083),
                         ("new_business", 3920), ("expansion", 3000), ("churn", -3920),
                         ("contraction", -2500), ("reactivation", 1900)]
    revenue = json.loads(admin.get("/admin/reports/export", query_string={
        **JAN_APR, "table": "revenue", "format": "json"}).get_data())
    assert [row["net_revenue"] for row in revenue] == [54320, 1900, 0, 1900]
    for table in ("plans", "trials"):
        for fmt in ("csv", "json"):
            answer = admin.get("/admin/reports/export",
                                query_string={**JAN_APR, "table": table, "format": fmt})
            assert answer.status_code == 200 and answer.get_data()


def test_a_trial_counts_no_mrr_until_it_converts_then_is_new_business(
        app, stripe_api, deliver_webhooks, make_user):
    """docs.stripe.com/billing/subscriptions/trials: the subscription is `trialing` until
    trial_end, then `active` with its first paid invoice."""
    sync_catalog()
    db.session.commit()
    elm = BookCustomer(stripe_api, deliver_webhooks, "2026-05-03", "Elm")
    elm.subscribe(price_id(stripe_api, "pro_year"), trial_period_days=14)
    assert db.session.scalar(db.select(db.func.count(MrrChange.id))) == 0  # trialing: 0 MRR
    elm.advance("2026-05-20")  # the trial ended on 17 May: 49000 / 12 = 4083 a month
    rows = db.session.execute(db.select(MrrChange.at, MrrChange.new_mrr, MrrChange.kind)).all()
    assert [(at.date().isoformat(), new, kind) for at, new, kind in rows] == [
        ("2026-05-17", 4083, "new_business")]
    auditor = signed_in(app, make_user(role=Role.AUDITOR))
    page = auditor.get("/admin/reports/customers", query_string={
        "currency": "usd", "first": "2026-05", "last": "2026-05"}).get_data(as_text=True)
    assert "1 of 1 trials that ended in the range went on to pay." in page
