"""The customer's cards: list, add through Stripe Elements, make default, remove."""
from __future__ import annotations

import secrets

from flask import abort, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user

from portal.auth.decorators import customer_required
from portal.billing import bp
from portal.billing.forms import ActionForm
from portal.billing.outcomes import attempt, audit_origin
from portal.services.payment_methods import (
    DefaultCardRemoval,
    confirm_setup,
    create_setup_intent,
    list_cards,
    remove_card,
    set_default,
)
from portal.services.stripe_client import publishable_key, stripe_js_url
from portal.services.subscriptions import live_subscription


@bp.route("/payment-methods")
@customer_required
def payment_methods():
    """List the account's cards and offer a form to add one."""
    account = current_user.account
    subscription = live_subscription(account)
    return render_template(
        "billing/payment_methods.html",
        cards=list_cards(account),
        default_id=account.default_payment_method_id,
        has_default=account.default_payment_method_id is not None,
        currency=subscription.currency if subscription else "usd",
        action_form=ActionForm(),
        stripe_js=stripe_js_url(),
        publishable_key=publishable_key(),
        # One "add card" attempt per page: its SetupIntent's idempotency key.
        setup_attempt=secrets.token_urlsafe(16),
    )


@bp.route("/payment-methods/setup-intent", methods=["POST"])
@customer_required
def setup_intent():
    """Create a SetupIntent for the card the customer is entering; answer its client secret."""
    payload = request.get_json(silent=True)
    token = payload.get("attempt") if isinstance(payload, dict) else None
    secret, problem = attempt(create_setup_intent, current_user.account,
                              token if isinstance(token, str) else None)
    if problem:
        return jsonify(error=problem), problem.status
    return jsonify(client_secret=secret)


@bp.route("/payment-methods/confirm", methods=["POST"])
@customer_required
def confirm_card():
    """Record the card Stripe.js just saved."""
    payload = request.get_json(silent=True)
    if not isinstance(payload, dict):
        return jsonify(error="send a JSON object with setup_intent"), 400
    setup_intent_id = payload.get("setup_intent")
    if not isinstance(setup_intent_id, str) or not setup_intent_id.startswith("seti_"):
        return jsonify(error="setup_intent is required"), 400
    card, problem = attempt(confirm_setup, current_user.account, setup_intent_id,
                            make_default=bool(payload.get("make_default")), **audit_origin())
    if problem:
        return jsonify(error=problem), problem.status
    flash(f"{card.brand.title()} ending in {card.last4} was added.", "success")
    return jsonify(payment_method=card.stripe_payment_method_id)


@bp.route("/payment-methods/<payment_method_id>/default", methods=["POST"])
@customer_required
def make_default(payment_method_id: str):
    """Make a card the default for the customer and its subscriptions."""
    return _card_action(set_default, payment_method_id, "Default card changed.")


@bp.route("/payment-methods/<payment_method_id>/remove", methods=["POST"])
@customer_required
def remove(payment_method_id: str):
    """Remove a card; the default card only after the customer confirms it."""
    if not ActionForm().validate_on_submit():
        abort(400)
    confirmed = request.form.get("confirm") == "1"
    _result, problem = attempt(remove_card, current_user.account, payment_method_id,
                               confirmed=confirmed, **audit_origin())
    removal = getattr(problem, "refused", None)
    if isinstance(removal, DefaultCardRemoval):
        return render_template("billing/remove_default_card.html", card=removal.card,
                               successor=removal.successor, action_form=ActionForm())
    flash(problem or "Card removed.", "error" if problem else "success")
    return redirect(url_for("billing.payment_methods"), 303)


def _card_action(action, payment_method_id: str, done: str):
    """Run a card change from a CSRF-checked form and report it on the cards page."""
    if not ActionForm().validate_on_submit():
        abort(400)
    _result, problem = attempt(action, current_user.account, payment_method_id,
                               **audit_origin())
    flash(problem or done, "error" if problem else "success")
    return redirect(url_for("billing.payment_methods"), 303)
