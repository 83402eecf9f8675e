"""Refund views: review, step-up, request, approve and retry (admins only; auditors read)."""
from __future__ import annotations

import secrets
import time
from decimal import Decimal, InvalidOperation

from flask import current_app, flash, g, redirect, render_template, request, session, url_for
from flask_login import current_user

from portal.admin import bp
from portal.admin.forms import RefundConfirmForm, RefundForm, RefundStepForm
from portal.auth.decorators import admin_required
from portal.extensions import db, limiter
from portal.models import Charge, RefundRequest
from portal.services.accounts import check_password
from portal.services.audit import audit_failed_step_up
from portal.services.money import minor_unit_exponent
from portal.services.refunds import (
    RefundForbidden,
    RefundRefused,
    approve_refund,
    customer_notice,
    needs_approval,
    refundable_amount,
    request_refund,
    retry_refund,
)

STEP_UP_KEY = "step_up_at"
# Wrong passwords typed at a step-up, per admin: a stolen session cannot guess for long.
STEP_UP_GUESSES = "10 per hour"


def _step_up_key() -> str:
    """Return the rate-limit key of the signed-in admin's step-up attempts."""
    return f"step-up:{getattr(current_user, 'id', None)}"


def _wrong_password_typed(_response) -> bool:
    """Return True when this request typed a wrong step-up password (counted against the limit)."""
    return bool(g.get("step_up_failed"))


step_up_limit = limiter.limit(STEP_UP_GUESSES, key_func=_step_up_key, methods=["POST"],
                              deduct_when=_wrong_password_typed)


def _minor_units(text: str, currency: str) -> int | None:
    """Return an amount typed in major units as minor units, or None when it is not one."""
    try:
        value = Decimal(text.strip().replace(",", ""))
    except InvalidOperation:
        return None
    minor = value.scaleb(minor_unit_exponent(currency))
    if not value.is_finite() or minor != minor.to_integral_value() or minor <= 0:
        return None
    return int(minor)


def stepped_up(password: str | None) -> bool:
    """Return True when the admin re-typed the password within the step-up window."""
    at = session.get(STEP_UP_KEY)
    if isinstance(at, (int, float)) and 0 <= time.time() - at < current_app.config[
            "STEP_UP_WINDOW_S"]:
        return True
    if password and check_password(current_user, password):
        session[STEP_UP_KEY] = time.time()
        return True
    if password:
        g.step_up_failed = True
        audit_failed_step_up(current_user, request.remote_addr, request.path)
    return False


def _refused(message: str, status: int, charge: Charge | None = None):
    """Render why a refund action did not go ahead."""
    back = url_for("admin.account", account_id=charge.account_id) if charge else None
    return render_template("admin/refund_refused.html", message=message, back=back), status


def _confirm_page(charge: Charge, form: RefundConfirmForm, status: int = 200, error=None):
    """Render the confirmation step of a refund."""
    amount = form.amount.data
    return render_template(
        "admin/refund_confirm.html", charge=charge, form=form, error=error,
        refundable=refundable_amount(charge), notice=customer_notice(charge, amount),
        needs_approval=needs_approval(amount, charge.currency),
        password_due=not stepped_up(None),
    ), status


@bp.route("/charges/<int:charge_id>/refund/review", methods=["POST"])
@admin_required
def review_refund(charge_id: int):
    """Show what a refund will do before it is confirmed."""
    charge = db.get_or_404(Charge, charge_id)
    form = RefundForm()
    if not form.validate_on_submit():
        errors = "; ".join(e for field in form.errors.values() for e in field)
        return _refused(errors or "The refund form is incomplete.", 400, charge)
    amount = _minor_units(form.amount.data, charge.currency)
    if amount is None:
        return _refused("Enter the amount as a positive number, e.g. 12.50.", 400, charge)
    left = refundable_amount(charge)
    confirm = RefundConfirmForm(formdata=None, amount=amount, reason=form.reason.data,
                                note=form.note.data, form_token=secrets.token_urlsafe(24))
    if amount > left:
        return _confirm_page(charge, confirm, 409, "That is more than is left to refund.")
    return _confirm_page(charge, confirm)


@bp.route("/charges/<int:charge_id>/refund", methods=["POST"])
@admin_required
@step_up_limit
def create_refund(charge_id: int):
    """Record a confirmed refund and send it (or hold it for a second admin's approval)."""
    charge = db.get_or_404(Charge, charge_id)
    form = RefundConfirmForm()
    if not form.validate_on_submit():
        return _refused("The confirmation was incomplete; start the refund again.", 400, charge)
    if not stepped_up(form.password.data):
        return _confirm_page(charge, form, 403, "Type your password to confirm the refund.")
    try:
        record = request_refund(current_user, charge.id, form.amount.data, form.reason.data,
                                form.note.data, form.form_token.data, ip=request.remote_addr)
    except RefundRefused as exc:
        return _refused(str(exc), 409, charge)
    flash(_outcome(record), "error" if record.status == "failed" else "success")
    return redirect(url_for("admin.account", account_id=charge.account_id), 303)


def _outcome(record: RefundRequest) -> str:
    """Return the message an admin sees after acting on a refund."""
    if record.status == "awaiting_approval":
        return f"Refund #{record.id} waits for another admin's approval."
    if record.status == "failed":
        return f"Refund #{record.id} failed: {record.failure_message}"
    return f"Refund #{record.id} sent to Stripe ({record.status})."


@bp.route("/refunds/<int:refund_id>/approve", methods=["POST"])
@admin_required
@step_up_limit
def approve(refund_id: int):
    """Approve another admin's refund and send it."""
    record = db.get_or_404(RefundRequest, refund_id)
    form = RefundStepForm()
    if not form.validate_on_submit():
        return _refused("The approval form was incomplete.", 400, record.charge)
    if not stepped_up(form.password.data):
        return _refused("Type your password to approve a refund.", 403, record.charge)
    try:
        record = approve_refund(current_user, record.id, ip=request.remote_addr)
    except RefundForbidden as exc:
        return _refused(str(exc), 403, record.charge)
    except RefundRefused as exc:
        return _refused(str(exc), 409, record.charge)
    flash(_outcome(record), "error" if record.status == "failed" else "success")
    return redirect(url_for("admin.account", account_id=record.account_id), 303)


@bp.route("/refunds/<int:refund_id>/retry", methods=["POST"])
@admin_required
@step_up_limit
def retry(refund_id: int):
    """Try a failed refund again as a new refund, or send a stuck one again under its key."""
    record = db.get_or_404(RefundRequest, refund_id)
    form = RefundStepForm()
    if not form.validate_on_submit() or not form.form_token.data:
        return _refused("The retry form was incomplete.", 400, record.charge)
    if not stepped_up(form.password.data):
        return _refused("Type your password to retry a refund.", 403, record.charge)
    try:
        record = retry_refund(current_user, record.id, form.form_token.data,
                              ip=request.remote_addr)
    except RefundRefused as exc:
        return _refused(str(exc), 409, record.charge)
    flash(_outcome(record), "error" if record.status == "failed" else "success")
    return redirect(url_for("admin.account", account_id=record.account_id), 303)
