"""Stripe-shaped API errors.

Raise one of these anywhere inside a handler; the dispatcher turns it into the JSON body
``{"error": {...}}`` with the right HTTP status. ``commit=True`` keeps the transaction's
changes (a declined payment still leaves a failed PaymentIntent and Charge behind).
"""

from __future__ import annotations

from typing import Any

DOC_URL = "https://stripe.com/docs/error-codes/{code}"


class StripeError(Exception):
    """An API error rendered as Stripe's ``error`` object."""

    def __init__(
        self,
        message: str,
        *,
        status: int = 400,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        decline_code: str | None = None,
        extra: dict[str, Any] | None = None,
        commit: bool = False,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.type = type
        self.code = code
        self.param = param
        self.decline_code = decline_code
        self.extra = extra or {}
        self.commit = commit
        self.headers = headers or {}

    def to_dict(self, request_id: str) -> dict[str, Any]:
        """Render the ``error`` object Stripe returns."""
        error: dict[str, Any] = {"type": self.type, "message": self.message}
        if self.code:
            error["code"] = self.code
            error["doc_url"] = DOC_URL.format(code=self.code)
        if self.param:
            error["param"] = self.param
        if self.decline_code:
            error["decline_code"] = self.decline_code
        error["request_log_url"] = f"https://dashboard.stripe.com/test/logs/{request_id}"
        error.update(self.extra)
        return {"error": error}


def invalid(message: str, param: str | None = None, code: str | None = None) -> StripeError:
    """Build a 400 invalid_request_error."""
    return StripeError(message, param=param, code=code)


def missing(kind: str, obj_id: str, param: str | None = "id") -> StripeError:
    """Build the 404 ``resource_missing`` error for an unknown id ("No such customer: 'cus_x'")."""
    return StripeError(
        f"No such {kind}: '{obj_id}'", status=404, code="resource_missing", param=param
    )


def required(param: str) -> StripeError:
    """Build the 400 error for a missing required parameter."""
    return StripeError(f"Missing required param: {param}.", param=param, code="parameter_missing")


def unknown_param(param: str) -> StripeError:
    """Build the 400 error for a parameter the endpoint does not accept."""
    return StripeError(
        f"Received unknown parameter: {param}", param=param, code="parameter_unknown"
    )


def auth_error(message: str) -> StripeError:
    """Build the 401 error for a missing or malformed API key."""
    return StripeError(message, status=401, headers={"WWW-Authenticate": 'Basic realm="Stripe"'})


def idempotency_error(key: str) -> StripeError:
    """Build the 400 error for a reused idempotency key with different parameters."""
    return StripeError(
        "Keys for idempotent requests can only be used with the same parameters they were "
        f"first used with. Try using a key other than '{key}' if you meant to execute a "
        "different request.",
        type="idempotency_error",
    )


def state_error(message: str, code: str = "payment_intent_unexpected_state") -> StripeError:
    """Build the 400 error for an action the object's current status does not allow."""
    return StripeError(message, code=code)
