"""3-D Secure: the ``next_action`` intents carry and sandbox-only endpoints to finish a challenge.

At Stripe the customer's bank runs the challenge page. In the sandbox the browser side
(the 3-D Secure page served at ``<sandbox root>/three_d_secure/<intent id>``) or a test
calls one of these endpoints, which exist only in the sandbox:

- ``POST /v1/sandbox/three_d_secure/<intent_id>/complete``: the customer passed the
  challenge; a PaymentIntent goes on to charge the card, a SetupIntent succeeds.
- ``POST /v1/sandbox/three_d_secure/<intent_id>/fail``: the customer failed or abandoned
  it; the intent returns to ``requires_payment_method`` with
  ``payment_intent_authentication_failure`` / ``setup_intent_authentication_failure``.

Both accept a secret key, or a publishable key together with the intent's
``client_secret`` (what the browser holds), and answer with the updated intent.
"""

from __future__ import annotations

from ..core.api import route
from ..core.context import Ctx
from ..core.errors import invalid, missing, state_error
from ..core.ids import new_id
from ..core.params import Str

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


def _intent(ctx: Ctx, intent_id: str) -> dict:
    """Load the PaymentIntent or SetupIntent waiting on a challenge."""
    kind = "payment_intent" if intent_id.startswith("pi_") else "setup_intent"
    intent = ctx.store.get(intent_id, kind)
    if intent is None:
        raise missing(kind, intent_id)
    check_client_secret(ctx, intent, ctx.params.get("client_secret"))
    if intent["status"] != "requires_action":
        raise state_error(
            f"This {'PaymentIntent' if kind == 'payment_intent' else 'SetupIntent'} is not "
            f"waiting for authentication; its status is {intent['status']}.",
            f"{kind}_unexpected_state",
        )
    return intent


@route("/v1/sandbox/three_d_secure/<intent_id>/complete", methods=["POST"], publishable=True)
def complete_challenge(ctx: Ctx, intent_id: str) -> dict:
    """Pass the 3-D Secure challenge of an intent (sandbox only)."""
    ctx.validate({"client_secret": Str()})
    intent = _intent(ctx, intent_id)
    if intent["object"] == "payment_intent":
        from .payment_intents import after_authentication

        return after_authentication(ctx, intent, passed=True)
    from .setup_intents import after_authentication as setup_after

    return setup_after(ctx, intent, passed=True)


@route("/v1/sandbox/three_d_secure/<intent_id>/fail", methods=["POST"], publishable=True)
def fail_challenge(ctx: Ctx, intent_id: str) -> dict:
    """Fail the 3-D Secure challenge of an intent (sandbox only)."""
    ctx.validate({"client_secret": Str()})
    intent = _intent(ctx, intent_id)
    if intent["object"] == "payment_intent":
        from .payment_intents import after_authentication

        return after_authentication(ctx, intent, passed=False)
    from .setup_intents import after_authentication as setup_after

    return setup_after(ctx, intent, passed=False)
