"""The account's API keys for the usage API: create (shown once), list, revoke."""
from __future__ import annotations

from flask import current_app, flash, redirect, render_template, url_for
from flask_login import current_user

from portal.auth.decorators import customer_required
from portal.billing import bp
from portal.billing.forms import ActionForm, ApiKeyForm
from portal.billing.outcomes import audit_origin
from portal.services.api_keys import ApiKeyRefused, account_api_keys, create_api_key, revoke_api_key
from portal.services.stripe_client import stripe_mode


def _render_keys(form: ApiKeyForm, new_secret: str | None = None, status: int = 200):
    """Render the keys page, with a just-created secret when there is one."""
    return render_template("billing/api_keys.html", keys=account_api_keys(current_user.account),
                           form=form, action_form=ActionForm(), new_secret=new_secret), status


@bp.route("/api-keys")
@customer_required
def api_keys():
    """List the account's API keys with a form to create one."""
    return _render_keys(ApiKeyForm())


@bp.route("/api-keys", methods=["POST"])
@customer_required
def create_key():
    """Create a named key and show its secret this once (never stored, never shown again)."""
    form = ApiKeyForm()
    if not form.validate_on_submit():
        return _render_keys(form, status=400)
    try:
        _key, secret = create_api_key(current_user.account, form.name.data,
                                      live=stripe_mode(current_app.config) == "live",
                                      **audit_origin())
    except ApiKeyRefused as exc:
        form.name.errors = [str(exc)]
        return _render_keys(form, status=400)
    # Rendered in the answer to the POST rather than redirected: the secret is never put
    # in the session or a URL.
    return _render_keys(ApiKeyForm(formdata=None), new_secret=secret)


@bp.route("/api-keys/<int:key_id>/revoke", methods=["POST"])
@customer_required
def revoke_key(key_id: int):
    """Revoke one of the account's keys."""
    form = ActionForm()
    if not form.validate_on_submit():
        flash("The form expired; please try again.", "error")
        return redirect(url_for("billing.api_keys"))
    try:
        revoked = revoke_api_key(current_user.account, key_id, **audit_origin())
    except ApiKeyRefused as exc:
        flash(str(exc), "error")
        return redirect(url_for("billing.api_keys"))
    flash(f"The key “{revoked.name}” is revoked; requests with it are now refused.", "success")
    return redirect(url_for("billing.api_keys"))
