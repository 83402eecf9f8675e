"""The account's invoice history, one invoice's page and its PDF."""
from __future__ import annotations

from flask import Response, abort, render_template, request
from flask_login import current_user, login_required
from wtforms.fields.choices import SelectChoice

from portal.auth.decorators import customer_required
from portal.billing import bp
from portal.billing.forms import ActionForm, InvoiceFilterForm
from portal.services.invoices import (
    BadInvoiceFilter,
    failing_invoice,
    invoice_history,
    invoice_years,
)
from portal.services.pdf import invoice_pdf, statement_version
from portal.services.statements import invoice_statement, visible_invoice


@bp.route("/invoices")
@customer_required
def invoices():
    """List the account's invoices, filtered by status and year, 25 at a time."""
    account = current_user.account
    form = InvoiceFilterForm(request.args, meta={"csrf": False})
    years = invoice_years(account.id)
    form.year.choices = [SelectChoice("", "Any year")] + [
        SelectChoice(str(year), str(year)) for year in years]
    if not form.validate():
        abort(400, "Unknown status or year.")
    try:
        page = invoice_history(account.id, form.status.data or None,
                               int(form.year.data) if form.year.data else None,
                               request.args.get("after") or None)
    except BadInvoiceFilter as exc:
        abort(400, str(exc))
    filters = {"status": form.status.data or "", "year": form.year.data or ""}
    if request.htmx and request.args.get("after"):
        return render_template("_partials/invoice_rows.html", page=page, filters=filters)
    return render_template("billing/invoices.html", page=page, form=form, filters=filters,
                           failing=failing_invoice(account), action_form=ActionForm())


@bp.route("/invoices/<invoice_id>")
@login_required
def invoice(invoice_id: str):
    """Show one invoice: seller, buyer, lines, taxes, totals, payments and refunds."""
    found = visible_invoice(current_user, invoice_id)
    if found is None:
        abort(404)
    return render_template("billing/invoice.html", statement=invoice_statement(found),
                           action_form=ActionForm())


@bp.route("/invoices/<invoice_id>/pdf")
@login_required
def invoice_pdf_download(invoice_id: str):
    """Send the invoice's PDF (stored once per version; 304 when the browser has it)."""
    found = visible_invoice(current_user, invoice_id)
    if found is None:
        abort(404)
    statement = invoice_statement(found)
    if found.status != "draft":
        etag = statement_version(statement.fingerprint())
        if etag in request.if_none_match:
            response = Response(status=304)
            response.set_etag(etag)
            return response
    document = invoice_pdf(statement)
    response = Response(document.read(), mimetype="application/pdf")
    response.headers["Content-Disposition"] = f'attachment; filename="{document.filename}"'
    response.headers["Cache-Control"] = "private, no-cache"
    if found.status != "draft":
        response.set_etag(document.etag)
    return response
