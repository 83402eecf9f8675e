"""The credits page: balance and ledger, credit packs through Checkout, the hard limit."""
from __future__ import annotations

from flask import abort, flash, redirect, render_template, url_for
from flask_login import current_user

from portal.auth.decorators import customer_required
from portal.billing import bp
from portal.billing.credits_forms import BuyPackForm, HardLimitForm
from portal.billing.outcomes import attempt, audit_origin
from portal.services.credit_packs import credit_packs, start_pack_checkout
from portal.services.credits import credits_view, set_hard_limit
from portal.services.links import external_url


@bp.route("/credits")
@customer_required
def credits():
    """Show the account's credit balance, its ledger, the packs for sale and the hard limit."""
    view = credits_view(current_user.account)
    return render_template("billing/credits.html", view=view, packs=credit_packs(),
                           buy_form=BuyPackForm(),
                           limit_form=HardLimitForm(enabled=view.hard_limit))


@bp.route("/credits/buy", methods=["POST"])
@customer_required
def buy_credits():
    """Send the customer to Stripe Checkout to pay for a credit pack."""
    form = BuyPackForm()
    if not form.validate_on_submit():
        abort(400)
    url, problem = attempt(start_pack_checkout, current_user.account, form.pack.data,
                           external_url("billing.credits_bought"),
                           external_url("billing.credits"), **audit_origin())
    if problem:
        flash(problem, "error")
        return redirect(url_for("billing.credits"), 303)
    return redirect(url, 303)


@bp.route("/credits/bought")
@customer_required
def credits_bought():
    """Come back from a paid Checkout; the credits arrive with Stripe's webhook."""
    flash("Thank you: the credits appear here as soon as Stripe confirms the payment.", "success")
    return redirect(url_for("billing.credits"))


@bp.route("/credits/hard-limit", methods=["POST"])
@customer_required
def hard_limit():
    """Turn the hard limit of the usage API on or off."""
    form = HardLimitForm()
    if not form.validate_on_submit():
        abort(400)
    set_hard_limit(current_user.account, bool(form.enabled.data), **audit_origin())
    flash("Hard limit on: usage beyond what is included and prepaid is refused."
          if form.enabled.data else "Hard limit off: usage beyond what is included is billed.",
          "success")
    return redirect(url_for("billing.credits"), 303)
