"""Running a billing service call from a view: a result, or a message for the customer."""
from __future__ import annotations

from collections.abc import Callable

from portal.services.refusals import BillingRefused
from portal.services.stripe_client import StripeError


class Refusal(str):
    """Why a billing action was refused, keeping the refusal itself for views that need it."""

    refused: BillingRefused | None = None


def attempt(action: Callable, *args, **kwargs) -> tuple[object | None, str | None]:
    """Call `action`; return (result, None), or (None, why) when refused or Stripe failed."""
    try:
        return action(*args, **kwargs), None
    except BillingRefused as exc:
        why = Refusal(str(exc))
        why.refused = exc
        return None, why
    except StripeError as exc:
        return None, getattr(exc, "user_message", None) or "Stripe could not complete that request."
