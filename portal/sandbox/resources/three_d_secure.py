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
from ..core.errors import missing, state_error
from ..core.params import Str
from ..objects import payment_intents, setup_intents
from ..objects.three_d_secure import check_client_secret

AFTER_AUTHENTICATION = {
    "payment_intent": payment_intents.after_authentication,
    "setup_intent": setup_intents.after_authentication,
}


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
    continue_after = AFTER_AUTHENTICATION[intent["object"]]
    return continue_after(ctx, intent, passed=True)


@route("/v1/sandbox/three_d_secure/<intent_id>/fail", methods=["POST"], publishable=True)
def fail_challenge(ctx: Ctx, intent_id: str) -> dict:
    """Fail the 3-D Secure challenge of an intent (sandbox only)."""
    ctx.validate({"client_secret": Str()})
    intent = _intent(ctx, intent_id)
    continue_after = AFTER_AUTHENTICATION[intent["object"]]
    return continue_after(ctx, intent, passed=False)
