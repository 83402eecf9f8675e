"""Health endpoint."""
from flask import jsonify

from portal.api import bp
from portal.extensions import csrf, limiter
from portal.services.health import health_report


@bp.route("/health")
@limiter.exempt
@csrf.exempt
def health():
    """Report status, version, database, Stripe mode and uptime; 503 without a database."""
    report, healthy = health_report()
    response = jsonify(report)
    response.status_code = 200 if healthy else 503
    response.headers["Cache-Control"] = "no-store"
    return response
