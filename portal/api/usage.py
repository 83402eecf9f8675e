"""The usage API: ingest events and read the period's usage with an account API key."""
from __future__ import annotations

from flask import current_app, jsonify, request
from flask_limiter.util import get_remote_address
from werkzeug.exceptions import HTTPException

from portal.api import v1
from portal.api.openapi import PROJECTION_METHOD, openapi_document
from portal.extensions import csrf, limiter
from portal.services.api_keys import KeyHolder, authenticate_api_key, key_hash
from portal.services.credits import UsageLimitReached, check_hard_limit, draw_down_overage
from portal.services.usage import UsageRequestInvalid, events_of, record_usage
from portal.services.usage_summary import period_usage

HTTP_ERROR_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed",
                    413: "body_too_large", 415: "unsupported_media_type", 429: "rate_limited"}


class ApiError(Exception):
    """An answer in the API's one error shape."""

    def __init__(self, status: int, code: str, message: str, details: list | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details


def error_body(status: int, code: str, message: str, details: list | None = None) -> dict:
    """Return the error shape every API failure answers with."""
    error = {"status": status, "code": code, "message": message}
    if details is not None:
        error["details"] = details
    return {"error": error}


@v1.errorhandler(ApiError)
def api_error(error: ApiError):
    """Answer a refused API request in the error shape."""
    response = jsonify(error_body(error.status, error.code, error.message, error.details))
    response.status_code = error.status
    if error.status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="usage"'
    return response


@v1.errorhandler(HTTPException)
def http_error(error: HTTPException):
    """Answer HTTP errors (429 from the rate limit, 413, ...) in the error shape."""
    status = error.code or 500
    message = error.description or ""
    if status == 413:
        limit = current_app.config.get("MAX_CONTENT_LENGTH") or 0
        message = (f"The body is larger than the {limit // 1024} KiB a request may carry; "
                   "send fewer events per request.")
    if status == 429:
        message = (f"Too many requests with this API key (limit {error.description}); "
                   "retry after the number of seconds in Retry-After.")
    response = jsonify(error_body(status, HTTP_ERROR_CODES.get(status, "http_error"), message))
    response.status_code = status
    return response


def bearer_secret() -> str | None:
    """Return the key from `Authorization: Bearer <key>`, or None."""
    scheme, _, secret = request.headers.get("Authorization", "").partition(" ")
    secret = secret.strip()
    return secret if scheme.lower() == "bearer" and secret else None


def rate_limit_key() -> str:
    """Count requests per API key (by its hash), or per address when none is given."""
    secret = bearer_secret()
    return f"api-key:{key_hash(secret)}" if secret else f"api-addr:{get_remote_address()}"


def usage_rate_limit() -> str:
    """Return the configured per-key limit."""
    return current_app.config["USAGE_API_RATE_LIMIT"]


# One budget per key across both endpoints, shared through Redis when REDIS_URL is set.
per_key_limit = limiter.shared_limit(usage_rate_limit, scope="usage-api",
                                     key_func=rate_limit_key)


def key_holder() -> KeyHolder:
    """Return who the request's API key acts for; refuse a missing, unknown or revoked key."""
    secret = bearer_secret()
    if secret is None:
        raise ApiError(401, "missing_api_key",
                       "Send an account API key as 'Authorization: Bearer <key>'.")
    holder = authenticate_api_key(secret)
    if holder is None:
        raise ApiError(401, "invalid_api_key", "This API key is unknown or has been revoked.")
    return holder


@v1.route("/usage", methods=["POST"])
@csrf.exempt
@per_key_limit
def ingest_usage():
    """Store one usage event or a batch; answer what became of each item."""
    holder = key_holder()
    payload = request.get_json(silent=True) if request.is_json else None
    if payload is None:
        raise ApiError(400, "invalid_json",
                       "The body must be JSON sent with Content-Type: application/json.")
    try:
        events = events_of(payload)
    except UsageRequestInvalid as exc:
        raise ApiError(400, exc.code, exc.message) from exc
    try:
        check_hard_limit(holder.account_id, events)
    except UsageLimitReached as exc:
        raise ApiError(402, "usage_limit_reached", str(exc)) from exc
    results = record_usage(holder.account_id, holder.key_id, holder.last_used_at, events)
    # Overage the events added is paid from prepaid credits as it accrues.
    draw_down_overage(holder.account_id)
    items = [result.as_json() for result in results]
    counts = {status: sum(1 for item in items if item["status"] == status)
              for status in ("accepted", "duplicate", "rejected")}
    if counts["rejected"] == len(items):
        raise ApiError(422, "no_valid_events",
                       "No event was stored: every item has errors (see details).", items)
    return jsonify(accepted=counts["accepted"], duplicates=counts["duplicate"],
                   rejected=counts["rejected"], items=items)


def iso(moment) -> str:
    """Return an RFC 3339 UTC time."""
    return moment.isoformat().replace("+00:00", "Z")


@v1.route("/usage/summary")
@csrf.exempt
@per_key_limit
def usage_summary():
    """Answer the current billing period's usage per meter."""
    holder = key_holder()
    period, meters = period_usage(holder.account_id)
    return jsonify(
        period={"start": iso(period.start), "end": iso(period.end), "source": period.source},
        plan=period.plan_key,
        projection_method=PROJECTION_METHOD,
        meters=[{"meter": usage.meter, "name": usage.name, "unit": usage.unit,
                 "aggregation": usage.aggregation, "used": usage.used,
                 "included": usage.included, "overage": usage.overage,
                 "projected": usage.projected} for usage in meters],
    )


@v1.route("/openapi.json")
@limiter.exempt
def openapi():
    """Serve the OpenAPI 3.1 description of the usage API."""
    return jsonify(openapi_document())
