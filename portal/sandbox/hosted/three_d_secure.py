"""The 3-D Secure challenge page an intent's ``next_action`` points to.

``GET /three_d_secure/<intent id>?client_secret=...`` shows Complete and Fail buttons. The
answer continues the intent (``resources.payment_intents.after_authentication`` /
``resources.setup_intents.after_authentication``). Then:

- when the intent was confirmed with a ``return_url`` (``next_action.redirect_to_url``), the
  browser goes there with Stripe's query parameters (``payment_intent``,
  ``payment_intent_client_secret`` or the ``setup_intent`` pair, and ``redirect_status``);
- otherwise the page was opened by Stripe.js in a modal frame: it tells its parent window
  with ``postMessage({type: "stripe-sandbox:3ds-complete", intent, outcome})``, and
  Stripe.js reads the intent again.
"""

from __future__ import annotations

import hmac
from urllib.parse import urlencode, urlsplit, urlunsplit

from flask import Response, redirect, render_template, request

from ..core.context import Ctx
from ..objects import payment_intents, setup_intents
from .blueprint import bp
from .pages import money, page, run


def _intent(ctx: Ctx, intent_id: str) -> dict | None:
    """Load the PaymentIntent or SetupIntent named in the URL."""
    kind = "payment_intent" if intent_id.startswith("pi_") else "setup_intent"
    return ctx.store.get(intent_id, kind)


def _secret_matches(intent: dict | None, given: str) -> bool:
    """Tell whether the client secret in the request is the intent's."""
    return intent is not None and hmac.compare_digest(intent["client_secret"], given or "")


def _with_query(url: str, params: dict[str, str]) -> str:
    """Append query parameters to a URL that may already have some."""
    parts = urlsplit(url)
    query = "&".join(q for q in (parts.query, urlencode(params)) if q)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def _problem(message: str, status: int) -> Response:
    """Render the page with a problem instead of the buttons."""
    return page(render_template("hosted/three_d_secure.html", problem=message), status)


@bp.get("/three_d_secure/<intent_id>")
def challenge_page(intent_id: str) -> Response:
    """Show the test challenge for an intent waiting on 3-D Secure."""
    secret = request.args.get("client_secret", "")

    def read(ctx: Ctx) -> tuple[dict | None, dict | None]:
        intent = _intent(ctx, intent_id)
        pm = ctx.store.get(intent["payment_method"] or "", "payment_method") if intent else None
        return intent, pm

    found, _ = run(read)
    intent, pm = found or (None, None)
    if intent is None or not _secret_matches(intent, secret):
        return _problem("This authentication link is not valid.", 404)
    if intent["status"] != "requires_action":
        # Answered already (a reload, a second tab): tell Stripe.js so its modal closes.
        return _finished(intent)
    amount = (
        money(intent["amount"], intent["currency"]) if intent["object"] == "payment_intent" else ""
    )
    return page(
        render_template(
            "hosted/three_d_secure.html",
            problem=None,
            amount=amount,
            card=(pm or {}).get("card"),
            client_secret=secret,
        )
    )


@bp.post("/three_d_secure/<intent_id>")
def answer_challenge(intent_id: str) -> Response:
    """Complete or fail the challenge, then return to the merchant or to Stripe.js."""
    secret = request.form.get("client_secret", "")
    passed = request.form.get("action") == "complete"

    def answer(ctx: Ctx) -> tuple[dict, str | None] | str:
        intent = _intent(ctx, intent_id)
        if intent is None or not _secret_matches(intent, secret):
            return "invalid"
        if intent["status"] != "requires_action":
            return "done"
        action = intent.get("next_action") or {}
        return_url = (
            (action.get("redirect_to_url") or {}).get("return_url")
            if action.get("type") == "redirect_to_url"
            else None
        )
        if intent["object"] == "payment_intent":
            intent = payment_intents.after_authentication(ctx, intent, passed=passed)
        else:
            intent = setup_intents.after_authentication(ctx, intent, passed=passed)
        return intent, return_url

    result, error = run(answer)
    if error is not None or result is None:
        return _problem(error.message if error else "Something went wrong.", 400)
    if result == "invalid":
        return _problem("This authentication link is not valid.", 404)
    if result == "done":
        return _problem("There is nothing left to authenticate here.", 409)
    intent, return_url = result
    outcome = _outcome(intent)
    if return_url:
        prefix = "payment_intent" if intent["object"] == "payment_intent" else "setup_intent"
        return redirect(
            _with_query(
                return_url,
                {
                    prefix: intent["id"],
                    f"{prefix}_client_secret": intent["client_secret"],
                    "redirect_status": outcome,
                },
            ),
            303,
        )
    return _finished(intent)


def _outcome(intent: dict) -> str:
    """Return Stripe's redirect_status for an intent after its challenge."""
    done = intent["status"] in ("succeeded", "requires_capture", "processing")
    return "succeeded" if done else "failed"


def _finished(intent: dict) -> Response:
    """Render the page that tells a Stripe.js modal the challenge is over."""
    return page(
        render_template(
            "hosted/three_d_secure_done.html", intent_id=intent["id"], outcome=_outcome(intent)
        )
    )
