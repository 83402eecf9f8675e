"""POST /webhooks/stripe: verify, store once, process, answer fast."""
from __future__ import annotations

from flask import current_app, jsonify, request

from portal.extensions import csrf, limiter
from portal.services import metrics
from portal.services.jobs import enqueue_event
from portal.services.stripe_client import SignatureVerificationError
from portal.services.webhooks import DuplicateEvent, record_event
from portal.webhooks import bp


@bp.route("/stripe", methods=["POST"])
@csrf.exempt
@limiter.exempt
def stripe_webhook():
    """Accept one signed Stripe event; a duplicate delivery is acknowledged and ignored."""
    payload = request.get_data(cache=False)
    signature = request.headers.get("Stripe-Signature")
    if not signature:
        return jsonify(error="missing Stripe-Signature header"), 400
    try:
        row = record_event(payload, signature)
    except SignatureVerificationError:
        return jsonify(error="signature verification failed"), 400
    except ValueError:
        return jsonify(error="payload is not a Stripe event"), 400
    except DuplicateEvent as duplicate:
        return jsonify(received=True, duplicate=True, id=str(duplicate)), 200
    metrics.webhook_received.labels(row.type).inc()
    status = enqueue_event(row.id)
    current_app.logger.info("stripe event %s %s: %s", row.stripe_event_id, row.type, status)
    return jsonify(received=True, id=row.stripe_event_id, status=status), 200
