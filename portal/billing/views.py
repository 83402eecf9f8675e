"""The customer's billing overview and the plan list."""
from __future__ import annotations

from flask import render_template, request
from flask_login import current_user, login_required

from portal.auth.decorators import customer_required
from portal.billing import bp
from portal.services.catalog import list_plans


@bp.route("/")
@customer_required
def dashboard():
    """Show the account's billing overview."""
    return render_template("billing/dashboard.html", account=current_user.account)


@bp.route("/plans")
@login_required
def plans():
    """List the plans with monthly or yearly prices."""
    interval = request.args.get("interval", "month")
    if interval not in ("month", "year"):
        interval = "month"
    template = "_partials/plan_cards.html" if request.htmx else "billing/plans.html"
    return render_template(template, plans=list_plans(), interval=interval)
