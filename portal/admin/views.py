"""Staff pages: every account, its users, staff roles and the audit log."""
from __future__ import annotations

import secrets

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from portal.admin import bp
from portal.admin.forms import (
    RefundForm,
    RefundStepForm,
    RetryEventsForm,
    StaffRoleForm,
    UserActiveForm,
)
from portal.auth.decorators import admin_required, staff_required
from portal.extensions import db
from portal.models import Account, Role, User
from portal.services.account_directory import (
    SORTS,
    STATUSES,
    AccountQuery,
    BadAccountQuery,
    account_page,
    currency_choices,
    plan_choices,
)
from portal.services.account_overview import account_overview
from portal.services.audit import record_audit
from portal.services.invoices import recent_invoices
from portal.services.refunds import account_refunds, refundable_charges
from portal.services.staff import (
    LastAdminError,
    list_staff,
    set_staff_role,
    set_user_active,
)
from portal.services.subscriptions import live_subscription, summarize
from portal.services.usage_summary import period_usage
from portal.services.webhooks import failed_events, retry_failed_events


@bp.route("/")
@staff_required
def accounts():
    """List accounts: search, filter by plan, status and currency, order by MRR or signup."""
    try:
        query = AccountQuery.from_args(request.args)
        page = account_page(query, request.args.get("after") or None)
    except BadAccountQuery as exc:
        return render_template("admin/accounts.html", page=None, query=AccountQuery(),
                               error=str(exc), **_account_choices()), 400
    if request.htmx and request.args.get("after"):
        return render_template("_partials/account_rows.html", page=page, query=query)
    return render_template("admin/accounts.html", page=page, query=query, error=None,
                           **_account_choices())


def _account_choices() -> dict:
    """Return the choices of the accounts list's filters."""
    return {"plans": plan_choices(), "currencies": currency_choices(), "statuses": STATUSES,
            "sorts": SORTS}


@bp.route("/accounts/<int:account_id>")
@staff_required
def account(account_id: int):
    """Show one account: members, billing, subscriptions and history, money, usage, events."""
    record = db.get_or_404(Account, account_id)
    period, meters = period_usage(record.id)
    return render_template(
        "admin/account.html",
        account=record,
        overview=account_overview(record),
        usage_period=period,
        usage=meters,
        summary=summarize(live_subscription(record)),
        invoices=recent_invoices(record),
        active_form=UserActiveForm(),
        charges=refundable_charges(record.id),
        refunds=account_refunds(record.id),
        can_refund=current_user.has_role(Role.ADMIN),
        refund_form=RefundForm(),
        refund_step_form=RefundStepForm(),
        retry_token=lambda: secrets.token_urlsafe(24),
    )


@bp.route("/staff")
@staff_required
def staff():
    """List admins and auditors."""
    return render_template(
        "admin/staff.html",
        staff=list_staff(),
        active_form=UserActiveForm(),
        role_form=StaffRoleForm(),
    )


def _back_to(user: User) -> str:
    """Return the page that lists this user."""
    if user.account_id is not None:
        return url_for("admin.account", account_id=user.account_id)
    return url_for("admin.staff")


@bp.route("/users/<int:user_id>/active", methods=["POST"])
@admin_required
def user_active(user_id: int):
    """Enable or disable a user's sign-in."""
    user = db.get_or_404(User, user_id)
    form = UserActiveForm()
    if not form.validate_on_submit():
        abort(400)
    if user.id == current_user.id:
        flash("You cannot disable your own sign-in.", "error")
        return redirect(_back_to(user), 303)
    try:
        set_user_active(current_user, user, form.active.data == "1", ip=request.remote_addr)
    except LastAdminError as exc:
        flash(str(exc), "error")
    else:
        flash(f"{user.email} is now {'enabled' if user.active else 'disabled'}.", "success")
    return redirect(_back_to(user), 303)


@bp.route("/users/<int:user_id>/role", methods=["POST"])
@admin_required
def user_role(user_id: int):
    """Switch a staff user between admin and auditor."""
    user = db.get_or_404(User, user_id)
    if user.role == Role.CUSTOMER.value:
        abort(400)
    form = StaffRoleForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        set_staff_role(current_user, user, Role(form.role.data), ip=request.remote_addr)
    except LastAdminError as exc:
        flash(str(exc), "error")
    else:
        flash(f"{user.email} is now {user.role}.", "success")
    return redirect(url_for("admin.staff"), 303)


@bp.route("/events")
@staff_required
def events():
    """List webhook events whose processing failed."""
    return render_template(
        "admin/events.html", events=failed_events(), retry_form=RetryEventsForm()
    )


@bp.route("/events/retry", methods=["POST"])
@admin_required
def retry_events():
    """Process failed webhook events again."""
    if not RetryEventsForm().validate_on_submit():
        abort(400)
    outcomes = retry_failed_events()
    record_audit(current_user, "webhook_events.retried", "webhook_event", "failed",
                 details=outcomes, ip=request.remote_addr)
    db.session.commit()
    summary = ", ".join(f"{count} {status}" for status, count in sorted(outcomes.items()))
    flash(f"Retried failed events: {summary or 'none were waiting'}.", "success")
    return redirect(url_for("admin.events"), 303)
