"""The hosted checkout page a Checkout Session's ``url`` opens (``/c/pay/<session id>``)."""

from __future__ import annotations

import hmac
from typing import Any

from flask import Response, redirect, render_template, request

from ..core.context import Ctx
from ..core.errors import StripeError
from ..resources.checkout_sessions import load
from . import checkout_flow
from .blueprint import bp
from .pages import money, page, run


def _load(session_id: str) -> dict | None:
    """Return the session (expired when its time has passed), or None when there is none."""
    session, error = run(lambda ctx: load(ctx, session_id))
    return None if error else session


def _interval_text(price: dict) -> str:
    """Return "per month" / "every 3 months" for a recurring price, "" for a one-time one."""
    recurring = price.get("recurring")
    if not recurring:
        return ""
    count = int(recurring.get("interval_count") or 1)
    unit = recurring["interval"]
    return f"per {unit}" if count == 1 else f"every {count} {unit}s"


def _summary(session: dict) -> dict[str, Any]:
    """Return the order summary the template shows, with amounts formatted for people."""
    currency = session.get("currency")
    items = []
    recurring_total = 0
    for item in session["_line_items"]["data"]:
        interval = _interval_text(item["price"])
        if interval:
            recurring_total += item["amount_subtotal"]
        items.append(
            {
                "description": item["description"] or item["price"]["id"],
                "quantity": item["quantity"],
                "interval": interval,
                "amount": money(item["amount_subtotal"], currency),
            }
        )
    sub_data = session.get("_subscription_data") or {}
    trial_days = sub_data.get("trial_period_days")
    first_interval = next((i["interval"] for i in items if i["interval"]), "")
    discount = (session.get("total_details") or {}).get("amount_discount") or 0
    return {
        "items": items,
        "trial_days": trial_days,
        "trial": bool(trial_days or sub_data.get("trial_end")),
        "then": f"{money(recurring_total, currency)} {first_interval}" if first_interval else "",
        "subtotal": money(session.get("amount_subtotal"), currency),
        "discount": money(discount, currency) if discount else "",
        "total": money(session.get("amount_total"), currency),
    }


def _button_label(session: dict, summary: dict) -> str:
    """Return the submit button's words, as Stripe Checkout words them per mode."""
    if session["mode"] == "setup":
        return "Save card"
    if session["mode"] == "subscription":
        return "Start trial" if summary["trial"] else "Subscribe"
    return f"Pay {summary['total']}"


def _promotion_label(session: dict) -> str:
    """Return the code applied to the session, if any."""
    ids = [e["promotion_code"] for e in session.get("discounts") or [] if e.get("promotion_code")]
    if not ids:
        return ""
    promo, _ = run(lambda ctx: ctx.store.get(ids[0], "promotion_code"))
    return (promo or {}).get("code", "")


def render(
    session: dict,
    *,
    error: str | None = None,
    field: str | None = None,
    form: dict | None = None,
    code_error: str | None = None,
    status: int = 200,
) -> Response:
    """Render the checkout page for an open session."""
    summary = _summary(session) if session["mode"] != "setup" else None
    return page(
        render_template(
            "hosted/checkout.html",
            session=session,
            summary=summary,
            button=_button_label(session, summary or {"trial": False, "total": ""}),
            needs_email=checkout_flow.needs_email(session),
            error=error,
            field=field,
            form=form or {},
            code_error=code_error,
            promotion_code=_promotion_label(session),
        ),
        status,
    )


def _closed(session: dict | None) -> Response:
    """Render the page for a missing, expired or completed session."""
    status = 404 if session is None else 200
    return page(render_template("hosted/checkout_closed.html", session=session), status)


@bp.get("/c/pay/<session_id>")
def checkout_page(session_id: str) -> Response:
    """Show the payment page of an open Checkout Session."""
    session = _load(session_id)
    if session is None or session["status"] != "open":
        return _closed(session)
    return render(session)


def _form() -> checkout_flow.CardForm:
    """Read the card form fields."""
    get = request.form.get
    return checkout_flow.CardForm(
        email=get("email", ""),
        name=get("name", ""),
        number=get("number", ""),
        expiry=get("expiry", ""),
        cvc=get("cvc", ""),
    )


@bp.post("/c/pay/<session_id>")
def submit_checkout(session_id: str) -> Response:
    """Apply a promotion code or pay with the card entered on the page."""
    session = _load(session_id)
    if session is None or session["status"] != "open":
        return _closed(session)
    if not hmac.compare_digest(request.form.get("form_token", ""), session["_form_token"]):
        return render(session, error="This page has expired. Reload it and try again.", status=400)
    kept = {"email": request.form.get("email", ""), "name": request.form.get("name", "")}
    action = request.form.get("action", "pay")
    if action in ("apply_code", "remove_code"):
        return _promotion(session_id, action, kept)
    card = _form()
    outcome, error = run(lambda ctx: checkout_flow.pay(ctx, load(ctx, session_id), card))
    return _respond(session_id, outcome, error, kept)


def _promotion(session_id: str, action: str, kept: dict) -> Response:
    """Apply or remove a promotion code and show the page again."""
    code = request.form.get("promotion_code", "")

    def change(ctx: Ctx) -> str | None:
        session = load(ctx, session_id)
        if not session.get("allow_promotion_codes"):
            return "Promotion codes are not accepted here."
        if action == "remove_code":
            checkout_flow.remove_promotion_code(ctx, session)
            return None
        return checkout_flow.apply_promotion_code(ctx, session, code)

    message, error = run(change)
    session = _load(session_id)
    if session is None:
        return _closed(session)
    return render(
        session,
        code_error=message or (error.message if error else None),
        form={**kept, "promotion_code": code if message else ""},
    )


def _respond(
    session_id: str, outcome: checkout_flow.Outcome | None, error: StripeError | None, kept: dict
) -> Response:
    """Redirect on success or a challenge; show the page again with the error otherwise."""
    if outcome is not None and outcome.redirect:
        return redirect(outcome.redirect, 303)
    session = _load(session_id)
    if session is None or session["status"] != "open":
        return _closed(session)
    if error is not None:
        return render(
            session,
            error=error.message,
            field=checkout_flow.card_error_field(error),
            form=kept,
            status=402 if error.status == 402 else 400,
        )
    message = outcome.error if outcome else None
    return render(
        session,
        error=message,
        field=outcome.field if outcome else None,
        form=kept,
        status=402 if message else 200,
    )


@bp.get("/c/pay/<session_id>/return")
def checkout_return(session_id: str) -> Response:
    """Continue a checkout after the 3-D Secure page."""
    session = _load(session_id)
    if session is None:
        return _closed(session)
    outcome, error = run(lambda ctx: checkout_flow.resume(ctx, load(ctx, session_id)))
    details = session.get("customer_details") or {}
    return _respond(
        session_id,
        outcome,
        error,
        {"email": details.get("email") or "", "name": details.get("name") or ""},
    )
