"""The Usage page: meters against the plan, projection, threshold banners, daily chart."""
from __future__ import annotations

from flask import render_template
from flask_login import current_user

from portal.auth.decorators import customer_required
from portal.billing import bp
from portal.services.usage_chart import chart_geometry
from portal.services.usage_notices import threshold_banners
from portal.services.usage_page import PROJECTION_TEXT, daily_usage, usage_overview


@bp.route("/usage")
@customer_required
def usage():
    """Show this period's meters, the projected invoice and daily usage beside last period."""
    account = current_user.account
    overview = usage_overview(account)
    charts = [chart_geometry(series) for series in daily_usage(account, overview)]
    return render_template("billing/usage.html", overview=overview, charts=charts,
                           usage_banners=threshold_banners(
                               account, overview.as_of, overview.period,
                               [card.usage for card in overview.cards]),
                           projection_text=PROJECTION_TEXT)


@bp.route("/usage/cards")
@customer_required
def usage_cards():
    """Return only the meter cards, for the page's refresh every 30 seconds."""
    return render_template("_partials/usage_cards.html", overview=usage_overview(
        current_user.account), projection_text=PROJECTION_TEXT)
