"""Revenue reports for staff: MRR and movements, money in and out, customers by plan; exports."""
from __future__ import annotations

import re

from flask import Response, abort, render_template, request, stream_with_context, url_for

from portal.admin import bp
from portal.auth.decorators import staff_required
from portal.services import charts
from portal.services.payment_reports import revenue_months, revenue_totals
from portal.services.report_exports import TABLES, csv_chunks, json_chunks
from portal.services.report_sql import MonthRange, RangeError
from portal.services.revenue_reports import (
    MOVEMENTS,
    currencies,
    mrr_months,
    plans,
    summarize,
    trials,
)

PAGES = {"mrr": "MRR and movements", "revenue": "Revenue", "customers": "Customers and plans"}
CURRENCY = re.compile(r"^[a-z]{3}$")


def _selection() -> tuple[str, MonthRange, list[str]]:
    """Return the currency and month range asked for (400 with a message when unreadable)."""
    known = currencies()
    currency = (request.args.get("currency") or (known[0] if known else "usd")).strip().lower()
    if not CURRENCY.match(currency):
        abort(400, description="Choose a currency by its three-letter ISO code, e.g. usd.")
    try:
        months = MonthRange.parse(request.args.get("first"), request.args.get("last"))
    except RangeError as exc:
        abort(400, description=str(exc))
    return currency, months, sorted(set(known) | {currency})


def _mrr_page(currency: str, months: MonthRange) -> dict:
    """Gather the MRR page: summary, monthly movements, MRR line and movement bars."""
    rows = mrr_months(currency, months)
    labels = [row.month for row in rows]
    return {
        "rows": rows, "summary": summarize(rows),
        "mrr_chart": charts.line_chart(labels, [row.closing_mrr for row in rows]),
        "movement_chart": charts.stacked_bars(
            labels, {kind: [row.movements[kind] for row in rows] for kind in MOVEMENTS}),
    }


def _revenue_page(currency: str, months: MonthRange) -> dict:
    """Gather the revenue page: monthly payments, refunds, net revenue and failures."""
    rows = revenue_months(currency, months)
    return {"rows": rows, "total": revenue_totals(rows),
            "revenue_chart": charts.stacked_bars(
                [row.month for row in rows],
                {"payments": [row.payments for row in rows],
                 "refunds": [-row.refunds for row in rows]})}


def _customers_page(currency: str, months: MonthRange) -> dict:
    """Gather the customers page: paying subscriptions by plan and trial conversion."""
    lines = plans(currency)
    trial_rows = trials(currency, months)
    ended = sum(row.ended for row in trial_rows)
    converted = sum(row.converted for row in trial_rows)
    return {"plans": lines, "trial_rows": trial_rows, "trials_ended": ended,
            "trials_converted": converted,
            "plan_chart": charts.bars([line.plan for line in lines],
                                      [line.mrr for line in lines], "mrr")}


GATHER = {"mrr": _mrr_page, "revenue": _revenue_page, "customers": _customers_page}


@bp.route("/reports/")
@staff_required
def reports():
    """Show MRR, ARR, the movements waterfall, churn and retention."""
    return _report_page("mrr")


@bp.route("/reports/revenue")
@staff_required
def revenue_report():
    """Show payments, refunds, net revenue, failed payments and recoveries per month."""
    return _report_page("revenue")


@bp.route("/reports/customers")
@staff_required
def customers_report():
    """Show paying subscriptions and customers by plan, and trial conversion."""
    return _report_page("customers")


PAGE_ENDPOINTS = {"mrr": "admin.reports", "revenue": "admin.revenue_report",
                  "customers": "admin.customers_report"}


def _report_page(page: str):
    """Render one report page for a currency and month range (htmx swaps only the body)."""
    currency, months, choices = _selection()
    context = {"page": page, "pages": PAGES, "endpoints": PAGE_ENDPOINTS, "currency": currency,
               "months": months, "currencies": choices,
               "exports": _export_links(page, currency, months),
               **GATHER[page](currency, months)}
    template = "_partials/report_body.html" if request.htmx else "admin/reports.html"
    return render_template(template, **context)


PAGE_TABLES = {"mrr": ("mrr", "mrr_changes"), "revenue": ("revenue",),
               "customers": ("plans", "trials")}


def _export_links(page: str, currency: str, months: MonthRange) -> list[tuple[str, str, str]]:
    """Return (table, CSV link, JSON link) for each table on a page."""
    args = {"currency": currency, "first": months.first, "last": months.last}
    return [(table, url_for("admin.report_export", table=table, format="csv", **args),
             url_for("admin.report_export", table=table, format="json", **args))
            for table in PAGE_TABLES[page]]


@bp.route("/reports/export")
@staff_required
def report_export():
    """Stream one report table as CSV or JSON, a chunk of rows at a time."""
    table, fmt = request.args.get("table", "mrr"), request.args.get("format", "csv")
    if table not in TABLES or fmt not in ("csv", "json"):
        abort(400, description=f"Export one of {', '.join(TABLES)} as csv or json.")
    currency, months, _ = _selection()
    rows = TABLES[table](currency, months)
    chunks = csv_chunks(rows) if fmt == "csv" else json_chunks(rows)
    filename = f"{table}-{currency}-{months.first}-{months.last}.{fmt}"
    return Response(
        stream_with_context(chunks),
        mimetype="text/csv" if fmt == "csv" else "application/json",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'})
