"""The audit log for staff: filtered keyset pages (htmx loads the next) and a CSV export.

There is no route that changes or removes an entry: the log is append-only.
"""
from __future__ import annotations

from datetime import UTC, datetime

from flask import Response, render_template, request, stream_with_context

from portal.admin import bp
from portal.auth.decorators import staff_required
from portal.services.audit_log import AuditFilter, BadAuditFilter, audit_csv, audit_page


@bp.route("/audit")
@staff_required
def audit():
    """Show the audit log, newest first, filtered by actor, action, account and dates."""
    try:
        audit_filter = AuditFilter.from_args(request.args)
    except BadAuditFilter as exc:
        return render_template("admin/audit.html", page=None, error=str(exc),
                               audit_filter=AuditFilter(), args=request.args), 400
    before = request.args.get("before", type=int)
    page = audit_page(audit_filter, before_id=before)
    if request.htmx and before is not None:
        return render_template("_partials/audit_rows.html", page=page,
                               audit_filter=audit_filter)
    return render_template("admin/audit.html", page=page, error=None,
                           audit_filter=audit_filter, args=request.args)


@bp.route("/audit.csv")
@staff_required
def audit_export():
    """Stream the filtered audit log as CSV, newest first."""
    try:
        audit_filter = AuditFilter.from_args(request.args)
    except BadAuditFilter as exc:
        return Response(str(exc) + "\n", status=400, mimetype="text/plain")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    response = Response(stream_with_context(audit_csv(audit_filter)),
                        mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="audit-{stamp}.csv"'
    response.headers["Cache-Control"] = "private, no-store"
    return response
