"""The customer's billing overview, plans, Checkout and subscription changes."""
from __future__ import annotations

from flask import abort, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user

from portal.auth.decorators import customer_required
from portal.billing import bp
from portal.billing.forms import (
    AbandonChangeForm,
    ActionForm,
    CancelForm,
    ConfirmChangeForm,
    PlanForm,
)
from portal.billing.outcomes import attempt, audit_origin
from portal.services.catalog import meter_units, yearly_savings
from portal.services.catalog_cache import catalog_snapshot
from portal.services.checkout import start_checkout
from portal.services.invoices import (
    invoice_settled,
    next_invoice_estimate,
    pay_invoice,
    recent_invoices,
    unpaid_invoices,
)
from portal.services.links import external_url
from portal.services.plan_changes import (
    abandon_change,
    change_plan,
    change_settled,
    proration_preview,
)
from portal.services.stripe_client import publishable_key, stripe_js_url
from portal.services.subscriptions import (
    cancel_at_period_end,
    live_subscription,
    resume,
    summarize,
)
from portal.services.usage_notices import threshold_banners
from portal.template_filters import format_date


@bp.route("/")
@customer_required
def dashboard():
    """Show the account's plan, status, next invoice and recent invoices."""
    account = current_user.account
    summary = summarize(live_subscription(account))
    unpaid, failing = unpaid_invoices(account)
    return render_template(
        "billing/dashboard.html",
        account=account,
        summary=summary,
        estimate=next_invoice_estimate(account, summary),
        unpaid=unpaid,
        failing=failing,
        invoices=recent_invoices(account),
        action_form=ActionForm(),
        usage_banners=threshold_banners(account),
    )


@bp.route("/plans")
@customer_required
def plans():
    """List the plans with monthly or yearly prices, the current one marked."""
    interval = request.args.get("interval", "month")
    if interval not in ("month", "year"):
        interval = "month"
    template = "_partials/plan_cards.html" if request.htmx else "billing/plans.html"
    offered = catalog_snapshot().active_plans()
    return render_template(template, plans=offered, interval=interval,
                           savings={plan.key: yearly_savings(plan) for plan in offered},
                           subscription=live_subscription(current_user.account),
                           plan_form=PlanForm(), units=meter_units())


@bp.route("/checkout", methods=["POST"])
@customer_required
def checkout():
    """Send the customer to Stripe Checkout for the chosen plan."""
    form = PlanForm()
    if not form.validate_on_submit():
        abort(400)
    # Stripe fills in {CHECKOUT_SESSION_ID}; url_for would escape the braces.
    success = external_url("billing.checkout_success")
    success += "?session_id={CHECKOUT_SESSION_ID}"
    url, problem = attempt(start_checkout, current_user.account, form.lookup_key.data, success,
                           external_url("billing.checkout_cancel"), **audit_origin())
    if problem:
        flash(problem, "error")
        return redirect(url_for("billing.plans"), 303)
    return redirect(url, 303)


@bp.route("/checkout/success")
@customer_required
def checkout_success():
    """Wait for the webhook that provisions the subscription (the query string proves nothing)."""
    return render_template("billing/checkout_success.html",
                           subscription=live_subscription(current_user.account))


@bp.route("/checkout/status")
@customer_required
def checkout_status():
    """Return the activation state as a fragment; htmx polls it until it is active."""
    return render_template("_partials/activation.html",
                           subscription=live_subscription(current_user.account))


@bp.route("/checkout/cancel")
@customer_required
def checkout_cancel():
    """Come back from an abandoned Checkout."""
    flash("Checkout was cancelled; nothing was charged.", "info")
    return redirect(url_for("billing.plans"))


@bp.route("/subscription/preview", methods=["POST"])
@customer_required
def preview_change():
    """Show what a plan change bills now, before the customer confirms it."""
    form = PlanForm()
    if not form.validate_on_submit():
        abort(400)
    preview, problem = attempt(proration_preview, current_user.account, form.lookup_key.data)
    if problem:
        flash(problem, "error")
        return redirect(url_for("billing.plans"), 303)
    confirm = ConfirmChangeForm(lookup_key=form.lookup_key.data,
                                proration_date=preview.proration_date)
    return render_template("billing/change_preview.html", preview=preview, form=confirm,
                           subscription=live_subscription(current_user.account))


@bp.route("/subscription/change", methods=["POST"])
@customer_required
def confirm_change():
    """Apply a previewed plan change; a payment the bank wants confirmed continues on this page."""
    form = ConfirmChangeForm()
    if not form.validate_on_submit():
        abort(400)
    outcome, problem = attempt(change_plan, current_user.account, form.lookup_key.data,
                               form.proration_date.data, **audit_origin())
    if problem:
        flash(problem, "error")
    elif outcome.client_secret:
        return render_template(
            "billing/authenticate_payment.html", client_secret=outcome.client_secret,
            amount=None, abandon_form=AbandonChangeForm(invoice_id=outcome.invoice_id),
            status_url=url_for("billing.change_status", invoice_id=outcome.invoice_id,
                               lookup_key=form.lookup_key.data),
            stripe_js=stripe_js_url(), publishable_key=publishable_key())
    else:
        flash("Your plan has changed.", "success")
    return redirect(url_for("billing.dashboard"), 303)


@bp.route("/subscription/change/<invoice_id>/status")
@customer_required
def change_status(invoice_id: str):
    """Answer whether the webhooks confirmed a plan change paid in the browser."""
    lookup_key = request.args.get("lookup_key", "")
    state, problem = attempt(change_settled, current_user.account, invoice_id, lookup_key)
    if problem:
        return jsonify(state="failed", message=problem), 404
    if state == "paid":
        flash("Payment confirmed: your plan has changed.", "success")
    return jsonify(state=state, done_url=url_for("billing.dashboard"))


@bp.route("/subscription/change/abandon", methods=["POST"])
@customer_required
def abandon_plan_change():
    """Keep the old plan after the bank refused to confirm the change's payment."""
    form = AbandonChangeForm()
    if not form.validate_on_submit():
        abort(400)
    _result, problem = attempt(abandon_change, current_user.account, form.invoice_id.data)
    flash(problem or "The payment was not confirmed: your plan was not changed.", "error")
    return jsonify(done_url=url_for("billing.dashboard"))


@bp.route("/subscription/cancel", methods=["GET", "POST"])
@customer_required
def cancel_subscription():
    """Show what cancelling does and when access ends; cancel at period end once confirmed."""
    form = CancelForm()
    if request.method == "GET":
        summary = summarize(live_subscription(current_user.account))
        if summary is None or summary.subscription.cancel_at_period_end:
            flash("There is no renewing subscription to cancel.", "info")
            return redirect(url_for("billing.dashboard"))
        return render_template("billing/cancel.html", summary=summary, form=form)
    if not form.validate_on_submit():
        flash("Please check the cancellation form.", "error")
        return redirect(url_for("billing.dashboard"), 303)
    subscription, problem = attempt(cancel_at_period_end, current_user.account,
                                    form.feedback.data or None, form.comment.data or None,
                                    **audit_origin())
    if problem and problem.status == 503:
        # Stripe did not answer: the same confirmation page, with what happened, to try again.
        flash(problem, "error")
        summary = summarize(live_subscription(current_user.account))
        if summary is not None:
            return render_template("billing/cancel.html", summary=summary, form=form), 503
    if problem:
        flash(problem, "error")
    elif subscription.current_period_end:
        flash(f"Your subscription ends on {format_date(subscription.current_period_end)}. "
              "You can resume it until then.", "success")
    else:
        flash("Your subscription will end at the end of the period.", "success")
    return redirect(url_for("billing.dashboard"), 303)


@bp.route("/subscription/resume", methods=["POST"])
@customer_required
def resume_subscription():
    """Keep the subscription renewing after all."""
    if not ActionForm().validate_on_submit():
        abort(400)
    _subscription, problem = attempt(resume, current_user.account, **audit_origin())
    if problem:
        flash(problem, "error")
    else:
        flash("Your subscription will renew as before.", "success")
    return redirect(url_for("billing.dashboard"), 303)


@bp.route("/invoices/<invoice_id>/pay", methods=["POST"])
@customer_required
def pay(invoice_id: str):
    """Pay an open invoice now; 3-D Secure continues in the browser through Stripe.js."""
    if not ActionForm().validate_on_submit():
        abort(400)
    result, problem = attempt(pay_invoice, current_user.account, invoice_id)
    if problem or not (result.paid or result.client_secret):
        flash(problem or result.message, "error")
    elif result.paid:
        flash("Thank you: the invoice is paid.", "success")
    else:
        return render_template(
            "billing/authenticate_payment.html", client_secret=result.client_secret,
            amount=(result.invoice.amount_remaining, result.invoice.currency), abandon_form=None,
            status_url=url_for("billing.invoice_status", invoice_id=invoice_id),
            stripe_js=stripe_js_url(), publishable_key=publishable_key())
    return redirect(url_for("billing.dashboard"), 303)


@bp.route("/invoices/<invoice_id>/status")
@customer_required
def invoice_status(invoice_id: str):
    """Answer whether the webhook confirmed an invoice paid in the browser."""
    state, problem = attempt(invoice_settled, current_user.account, invoice_id)
    if problem:
        return jsonify(state="failed", message=problem), 404
    if state == "paid":
        flash("Thank you: the invoice is paid.", "success")
    return jsonify(state=state, done_url=url_for("billing.dashboard"))
