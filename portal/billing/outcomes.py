"""Running a billing service call from a view: a result, or a message for the customer."""
from __future__ import annotations

import logging
from collections.abc import Callable

from flask import request
from flask_login import current_user

from portal.services.refusals import BillingRefused
from portal.services.stripe_client import (
    APIConnectionError,
    CardError,
    RateLimitError,
    StripeError,
    outcome_unknown,
)

log = logging.getLogger(__name__)
UNREACHABLE = ("Stripe, our payment provider, is not answering, so nothing was changed or "
               "charged. Please try again in a minute.")
BUSY = ("Stripe, our payment provider, is too busy to take that right now, so nothing was "
        "changed or charged. Please try again in a minute.")
UNKNOWN = ("Stripe, our payment provider, did not confirm whether that went through. Nothing is "
           "ever charged twice: this page updates as soon as Stripe tells us the outcome, so "
           "please check again in a minute before trying again.")
FAILED = ("Our payment provider could not complete that request, so nothing was changed. "
          "Please try again; if it keeps happening, contact us and quote reference {ref}.")


class Problem(str):
    """A message for the customer, with the HTTP status a JSON answer should carry."""

    status: int = 400
    # The refusal itself, for views that need more than its words.
    refused: BillingRefused | None = None

    def __new__(cls, message: str, status: int = 400) -> Problem:
        problem = super().__new__(cls, message)
        problem.status = status
        return problem


def stripe_problem(exc: StripeError) -> Problem:
    """Return plain words for a Stripe failure; log Stripe's own text and request id."""
    request_id = getattr(exc, "request_id", None) or "-"
    log.warning("Stripe %s (request %s): %s", type(exc).__name__, request_id, exc)
    if isinstance(exc, CardError):
        # Card declines carry Stripe's customer-facing wording ("Your card was declined.").
        return Problem(exc.user_message or "The card was declined.", 402)
    if outcome_unknown(exc):
        # The request reached Stripe (or Stripe failed midway): its webhook settles it.
        return Problem(UNKNOWN, 503)
    if isinstance(exc, APIConnectionError):
        return Problem(UNREACHABLE, 503)
    if isinstance(exc, RateLimitError):
        return Problem(BUSY, 503)
    return Problem(FAILED.format(ref=request_id), 502)


def audit_origin() -> dict:
    """Return who is acting and from where, for the audit entry of a billing action."""
    return {"actor": current_user._get_current_object(), "ip": request.remote_addr}


def attempt(action: Callable, *args, **kwargs) -> tuple[object | None, Problem | None]:
    """Call `action`; return (result, None), or (None, why) when refused or Stripe failed."""
    try:
        return action(*args, **kwargs), None
    except BillingRefused as exc:
        problem = Problem(str(exc), 400)
        problem.refused = exc
        return None, problem
    except StripeError as exc:
        return None, stripe_problem(exc)
