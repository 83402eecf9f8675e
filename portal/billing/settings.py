"""Account settings: billing details, tax ids, email preferences and the member's email."""
from __future__ import annotations

from flask import flash, redirect, render_template, url_for
from flask_login import current_user

from portal.auth.decorators import customer_required
from portal.billing import bp
from portal.billing.outcomes import attempt, audit_origin
from portal.billing.settings_forms import (
    BillingDetailsForm,
    EmailChangeForm,
    PreferencesForm,
    RemoveTaxIdForm,
    TaxIdForm,
)
from portal.services.billing_details import (
    account_tax_ids,
    add_tax_id,
    confirm_email_change,
    remove_tax_id,
    save_billing_details,
    set_reminder_emails,
)
from portal.services.notices import send_email_change_link


def _render(status: int = 200, **forms):
    """Render the settings page with the given forms (fresh ones for the rest)."""
    account = current_user.account
    address = account.address or {}
    details = forms.get("details") or BillingDetailsForm(
        formdata=None, name=account.name, legal_name=account.legal_name,
        billing_email=account.billing_email, **{key: address.get(key) for key in (
            "line1", "line2", "postal_code", "city", "state", "country")},
        **audit_origin())
    return render_template(
        "billing/settings.html", account=account, tax_ids=account_tax_ids(account),
        details=details, tax_form=forms.get("tax_form") or TaxIdForm(formdata=None),
        remove_form=RemoveTaxIdForm(formdata=None),
        preferences=forms.get("preferences") or PreferencesForm(
            formdata=None, reminder_emails=account.reminder_emails),
        email_form=forms.get("email_form") or EmailChangeForm(formdata=None),
    ), status


@bp.route("/settings")
@customer_required
def settings():
    """Show the account's billing details, tax ids, email preferences and sign-in email."""
    return _render()


@bp.route("/settings/details", methods=["POST"])
@customer_required
def save_details():
    """Save the account name, legal name, billing email and address (to Stripe too)."""
    form = BillingDetailsForm()
    if not form.validate_on_submit():
        return _render(400, details=form)
    _account, problem = attempt(
        save_billing_details, current_user.account, name=form.name.data,
        legal_name=form.legal_name.data, billing_email=form.billing_email.data,
        address={key: getattr(form, key).data for key in (
            "line1", "line2", "postal_code", "city", "state", "country")},
        **audit_origin())
    flash(problem or "Billing details saved.", "error" if problem else "success")
    return redirect(url_for("billing.settings"), 303)


@bp.route("/settings/tax-ids", methods=["POST"])
@customer_required
def add_tax_id_view():
    """Add a tax id after checking its format."""
    form = TaxIdForm()
    if not form.validate_on_submit():
        return _render(400, tax_form=form)
    _row, problem = attempt(add_tax_id, current_user.account, form.type.data, form.value.data,
                            **audit_origin())
    if problem:
        form.value.errors = [problem]
        return _render(400, tax_form=form)
    flash("Tax id added.", "success")
    return redirect(url_for("billing.settings"), 303)


@bp.route("/settings/tax-ids/remove", methods=["POST"])
@customer_required
def remove_tax_id_view():
    """Remove a tax id from the account."""
    form = RemoveTaxIdForm()
    if not form.validate_on_submit():
        return _render(400)
    _none, problem = attempt(remove_tax_id, current_user.account, form.tax_id.data,
                            **audit_origin())
    flash(problem or "Tax id removed.", "error" if problem else "success")
    return redirect(url_for("billing.settings"), 303)


@bp.route("/settings/preferences", methods=["POST"])
@customer_required
def save_preferences():
    """Turn the optional reminder emails on or off."""
    form = PreferencesForm()
    if not form.validate_on_submit():
        return _render(400, preferences=form)
    set_reminder_emails(current_user.account, bool(form.reminder_emails.data), **audit_origin())
    flash("Email preferences saved.", "success")
    return redirect(url_for("billing.settings"), 303)


@bp.route("/settings/email", methods=["POST"])
@customer_required
def change_email():
    """Send a confirmation link to the new address; the email changes once it is opened."""
    form = EmailChangeForm()
    if not form.validate_on_submit():
        return _render(400, email_form=form)
    _sent, problem = attempt(send_email_change_link, current_user._get_current_object(),
                             form.new_email.data, form.password.data)
    if problem:
        form.new_email.errors = [problem]
        return _render(400, email_form=form)
    flash(f"We sent a confirmation link to {form.new_email.data.strip().lower()}.", "info")
    return redirect(url_for("billing.settings"), 303)


@bp.route("/settings/email/confirm/<token>")
@customer_required
def confirm_email(token: str):
    """Apply an email change from its confirmation link."""
    user, problem = attempt(confirm_email_change, token, current_user._get_current_object())
    flash(problem or f"Your email is now {user.email}.", "error" if problem else "success")
    return redirect(url_for("billing.settings"), 303)
