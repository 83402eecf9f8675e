"""3-D Secure: the next_action an intent carries and the error a failed challenge leaves."""

from __future__ import annotations

from ..core.context import Ctx
from ..core.errors import invalid
from ..core.ids import new_id

AUTH_FAILED_MESSAGE = (
    "We are unable to authenticate your payment method. Please choose a "
    "different payment method and try again."
)


def challenge_url(ctx: Ctx, intent: dict) -> str:
    """Return the absolute URL of the sandbox's challenge page for an intent."""
    return f"{ctx.url_root}three_d_secure/{intent['id']}?client_secret={intent['client_secret']}"


def next_action(ctx: Ctx, intent: dict, return_url: str | None) -> dict:
    """Build ``next_action``: a redirect when a return_url was given, else Stripe.js handling."""
    url = challenge_url(ctx, intent)
    if return_url:
        return {
            "type": "redirect_to_url",
            "redirect_to_url": {"return_url": return_url, "url": url},
        }
    return {
        "type": "use_stripe_sdk",
        "use_stripe_sdk": {
            "type": "three_d_secure_redirect",
            "stripe_js": url,
            "source": new_id("src"),
        },
    }


def authentication_error(pm: dict, code: str) -> dict:
    """Return the last_payment_error / last_setup_error of a failed challenge."""
    return {
        "code": code,
        "doc_url": f"https://stripe.com/docs/error-codes/{code}",
        "message": AUTH_FAILED_MESSAGE,
        "payment_method": {k: v for k, v in pm.items() if not k.startswith("_")},
        "type": "invalid_request_error",
    }


def check_client_secret(ctx: Ctx, intent: dict, given: str | None) -> None:
    """Require the intent's client_secret when the caller holds only a publishable key."""
    if ctx.publishable and given != intent["client_secret"]:
        raise invalid(
            "The client_secret provided does not match the client_secret associated "
            "with the intent.",
            "client_secret",
        )
