"""The hosted invoice page and its PDF (an invoice's ``hosted_invoice_url`` and ``invoice_pdf``).

``GET /invoice/<token>`` shows a finalized invoice: number, dates, lines, discounts, taxes,
totals and status.  ``GET /invoice/<token>/pdf`` renders the same content as a PDF with
xhtml2pdf.  The token is a secret minted at finalization, as Stripe's hosted URLs are.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

from flask import Response, abort, render_template
from xhtml2pdf import pisa

from ..billing.catalog import tax_rates
from ..core.context import Ctx
from .blueprint import bp
from .pages import money, page, run


def _date(ts: int | None) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%d %b %Y") if ts else ""


def _tax_label(rate: dict[str, Any], behavior: str) -> str:
    included = ", included" if behavior == "inclusive" else ""
    return f"{rate.get('display_name') or 'Tax'} ({rate.get('percentage', '')}%{included})"


def _view(ctx: Ctx, token: str) -> dict[str, Any] | None:
    """Load the invoice a page token names, with what the template shows."""
    rows = ctx.store.select("invoice", "json_extract(body, '$._page_token') = ?", (token,))
    if not rows:
        return None
    invoice = rows[0]
    rates = {
        r["id"]: r
        for r in tax_rates(
            ctx.store, [t["tax_rate_details"]["tax_rate"] for t in invoice.get("total_taxes") or []]
        )
    }
    taxes = [
        {
            "label": _tax_label(
                rates.get(t["tax_rate_details"]["tax_rate"], {}), t["tax_behavior"]
            ),
            "amount": t["amount"],
        }
        for t in invoice.get("total_taxes") or []
    ]
    return {
        "invoice": invoice,
        "lines": invoice.get("_lines") or [],
        "taxes": taxes,
        "discount": sum(d["amount"] for d in invoice.get("total_discount_amounts") or []),
        "money": money,
        "date": _date,
    }


@bp.route("/invoice/<token>")
def hosted_invoice(token: str) -> Response:
    """Show a finalized invoice to whoever holds its URL."""
    view, _ = run(lambda ctx: _view(ctx, token))
    if view is None:
        abort(404)
    return page(render_template("hosted/invoice.html", **view))


@bp.route("/invoice/<token>/pdf")
def invoice_pdf(token: str) -> Response:
    """Return the invoice as a PDF document."""
    view, _ = run(lambda ctx: _view(ctx, token))
    if view is None:
        abort(404)
    html = render_template("hosted/invoice_pdf.html", **view)
    out = io.BytesIO()
    result = pisa.CreatePDF(html, dest=out)
    if result.err:
        abort(500)
    name = view["invoice"]["number"] or view["invoice"]["id"]
    return Response(
        out.getvalue(),
        mimetype="application/pdf",
        headers={"Content-Disposition": f'inline; filename="Invoice-{name}.pdf"'},
    )
