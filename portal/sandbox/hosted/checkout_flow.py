"""What paying on the hosted checkout page does to the store, step by step as Stripe does it.

One submission of the form:
1. the card becomes a PaymentMethod (invalid details answer with Stripe.js's messages);
2. a customer is created when the mode needs one (subscription mode, or
   ``customer_creation=always``), once per session: a retry with another card reuses it;
3. by mode: payment confirms a PaymentIntent for ``amount_total``; setup confirms the
   session's SetupIntent; subscription attaches the card, creates the subscription
   (``payment_behavior=default_incomplete``, the card as ``default_payment_method``) and
   confirms its first invoice's PaymentIntent, or, with a trial, saves the card with a
   SetupIntent first and then creates the trialing subscription;
4. a card needing 3-D Secure sends the browser to the challenge page, which returns to
   ``/c/pay/<id>/return``; a decline leaves the session open for another card;
5. on success the session is completed and ``checkout.session.completed`` emitted.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from ..billing import subscription_state as subs
from ..billing.money import round_half_up
from ..core.context import Ctx
from ..core.errors import StripeError
from ..core.objects import fetch, save
from ..objects import cards, checkout_sessions, payment_intents, payment_methods, setup_intents
from ..resources import customers, promotion_codes, subscriptions
from ..resources.checkout_sessions import call_handler


@dataclass
class Outcome:
    """Where the browser goes next: a URL to redirect to, or the page again with an error."""

    redirect: str | None = None
    error: str | None = None
    field: str | None = None


@dataclass
class CardForm:
    """The fields of the hosted payment form."""

    email: str
    name: str
    number: str
    expiry: str
    cvc: str


def success_url(session: dict) -> str | None:
    """Return success_url with ``{CHECKOUT_SESSION_ID}`` replaced by the session id."""
    url = session.get("success_url")
    return url.replace("{CHECKOUT_SESSION_ID}", session["id"]) if url else None


def needs_email(session: dict) -> bool:
    """Tell whether the page must ask for an email (no customer and no customer_email)."""
    return not session.get("customer") and not session.get("customer_email")


def _parse_expiry(text: str) -> tuple[int | None, int | None]:
    """Read ``MM / YY`` (or ``MM/YYYY``) into month and year."""
    digits = "".join(ch for ch in text if ch.isdigit())
    if len(digits) < 3:
        return None, None
    month, year = int(digits[:2]), int(digits[2:])
    return month, (year + 2000 if year < 100 else year)


def _payment_method(ctx: Ctx, form: CardForm, email: str | None) -> dict:
    """Validate the card like Stripe.js and store it as a PaymentMethod."""
    month, year = _parse_expiry(form.expiry)
    today = dt.datetime.fromtimestamp(ctx.now(), dt.UTC)
    number = cards.check_card(
        form.number, month, year, form.cvc.strip() or None, (today.year, today.month)
    )
    if not form.cvc.strip():
        raise cards.card_error(
            "incomplete_cvc", "Your card's security code is incomplete.", "card[cvc]"
        )
    billing = {"name": form.name.strip() or None, "email": email}
    return payment_methods.build_card(
        ctx, number, month or 1, year or today.year, form.cvc.strip(), billing
    )


def _customer(
    ctx: Ctx, session: dict, email: str | None, name: str | None, required: bool
) -> str | None:
    """Return the session's customer, creating it once when the mode requires one."""
    if session.get("customer"):
        return session["customer"]
    if session.get("_customer"):
        return session["_customer"]
    if not required:
        return None
    params = {k: v for k, v in {"email": email, "name": name}.items() if v}
    customer = call_handler(ctx, customers.create_customer, params)
    session["_customer"] = customer["id"]
    save(ctx, session)
    return customer["id"]


def _return_url(ctx: Ctx, session: dict) -> str:
    """Return the page 3-D Secure comes back to."""
    return f"{ctx.url_root}c/pay/{session['id']}/return"


def _after_intent(ctx: Ctx, session: dict, intent: dict) -> Outcome:
    """Continue after a confirmation: challenge, failure message, or completion."""
    if intent["status"] == "requires_action":
        return Outcome(redirect=intent["next_action"]["redirect_to_url"]["url"])
    if intent["status"] in ("succeeded", "processing", "requires_capture"):
        return finish(ctx, session)
    error = intent.get("last_payment_error") or intent.get("last_setup_error") or {}
    return Outcome(error=error.get("message") or "Your card was declined.")


def _confirm_payment(ctx: Ctx, session: dict, pm: dict, customer: str | None) -> Outcome:
    """Create (once) and confirm the PaymentIntent of a payment-mode session."""
    data = session.get("_payment_intent_data") or {}
    if session.get("payment_intent"):
        pi = payment_intents.load(ctx, session["payment_intent"])
    else:
        params: dict[str, Any] = {
            "amount": session["amount_total"],
            "currency": session["currency"],
            "metadata": data.get("metadata") or {},
        }
        for key in ("description", "setup_future_usage", "receipt_email", "capture_method"):
            if data.get(key):
                params[key] = data[key]
        if customer:
            params["customer"] = customer
        pi = payment_intents.new_intent(ctx, params)
        session["payment_intent"] = pi["id"]
        save(ctx, session)
    pi = payment_intents.confirm(
        ctx, pi, {"payment_method": pm["id"], "return_url": _return_url(ctx, session)}
    )
    return _after_intent(ctx, session, pi)


def _confirm_setup(ctx: Ctx, session: dict, si_id: str, pm: dict) -> Outcome:
    """Confirm a SetupIntent with the new card."""
    si = setup_intents.load(ctx, si_id)
    si = setup_intents.confirm(
        ctx, si, {"payment_method": pm["id"], "return_url": _return_url(ctx, session)}
    )
    if si["status"] == "succeeded" and session["mode"] == "subscription":
        return _start_subscription(ctx, session)
    return _after_intent(ctx, session, si)


def _discount_params(session: dict) -> dict:
    """Return the subscription's discounts from the session's applied codes."""
    entries = [{k: v for k, v in d.items() if v} for d in session.get("discounts") or []]
    return {"discounts": entries} if entries else {}


def _start_subscription(ctx: Ctx, session: dict) -> Outcome:
    """Create the subscription (trialing, or incomplete until its first payment) and collect."""
    data = session.get("_subscription_data") or {}
    params: dict[str, Any] = {
        "customer": session["_customer_id"],
        "items": [
            {"price": i["price"]["id"], "quantity": i["quantity"]}
            for i in session["_line_items"]["data"]
        ],
        "default_payment_method": session["_payment_method"],
        "payment_behavior": "default_incomplete",
        "metadata": data.get("metadata") or {},
        **_discount_params(session),
    }
    for key in ("trial_period_days", "trial_end", "description", "default_tax_rates"):
        if data.get(key):
            params[key] = data[key]
    sub = call_handler(ctx, subscriptions.create_subscription, params)
    # Shown on the session once it completes; until then a retry reuses it.
    session["_subscription"] = sub["id"]
    save(ctx, session)
    if sub["status"] != "incomplete":
        return finish(ctx, session)
    invoice = fetch(ctx, "invoice", sub["latest_invoice"])
    return _pay_invoice(ctx, session, invoice, session["_payment_method"])


def _pay_invoice(ctx: Ctx, session: dict, invoice: dict, pm_id: str) -> Outcome:
    """Confirm the PaymentIntent of the subscription's first invoice on-session."""
    pi = payment_intents.load(ctx, invoice["_payment_intent"])
    pi = payment_intents.confirm(
        ctx, pi, {"payment_method": pm_id, "return_url": _return_url(ctx, session)}
    )
    return _after_intent(ctx, session, pi)


def _subscribe(ctx: Ctx, session: dict, pm: dict, customer: str) -> Outcome:
    """Attach the card and start (or retry paying) the session's subscription."""
    payment_methods.attach(ctx, pm["id"], customer)
    session["_payment_method"] = pm["id"]
    session["_customer_id"] = customer
    save(ctx, session)
    if session.get("_subscription"):
        sub = subscriptions.load(ctx, session["_subscription"])
        before = subs.snapshot(ctx.store, sub)
        sub["default_payment_method"] = pm["id"]
        subs.emit_changes(ctx, sub, before)
        invoice = fetch(ctx, "invoice", sub["latest_invoice"])
        return _pay_invoice(ctx, session, invoice, pm["id"])
    if session["amount_total"] == 0:
        # A trial: save the card for the first renewal (with 3-D Secure when the card asks);
        # a retry after a decline or failed challenge confirms the same SetupIntent again.
        # Stripe shows this SetupIntent as the session's setup_intent.
        if not session.get("setup_intent"):
            si = setup_intents.new_setup_intent(ctx, {"customer": customer, "usage": "off_session"})
            session["setup_intent"] = si["id"]
            save(ctx, session)
        return _confirm_setup(ctx, session, session["setup_intent"], pm)
    return _start_subscription(ctx, session)


def customer_details(email: str | None, name: str | None) -> dict:
    """Return the session's ``customer_details`` for what the customer typed."""
    return {
        "address": None,
        "business_name": None,
        "email": email,
        "individual_name": None,
        "name": name,
        "phone": None,
        "tax_exempt": "none",
        "tax_ids": [],
    }


def pay(ctx: Ctx, session: dict, form: CardForm) -> Outcome:
    """Handle one submission of the payment form."""
    if session["status"] != "open":
        # A second submission that queued behind the one that completed (or expired) it.
        return Outcome(
            redirect=success_url(session) if session["status"] == "complete" else None,
            error=None if session["status"] == "complete" else "This session has expired.",
        )
    email = session.get("customer_email") or form.email.strip() or None
    if session.get("customer"):
        email = (ctx.store.get(session["customer"], "customer") or {}).get("email") or email
    if needs_email(session) and not email:
        return Outcome(error="Your email is incomplete.", field="email")
    session["customer_details"] = customer_details(email, form.name.strip() or None)
    save(ctx, session)
    pm = _payment_method(ctx, form, email)
    mode = session["mode"]
    required = mode == "subscription" or session.get("customer_creation") == "always"
    customer = _customer(ctx, session, email, form.name.strip() or None, required)
    if mode == "subscription":
        return _subscribe(ctx, session, pm, customer or "")
    if mode == "payment" and session["amount_total"] == 0:
        # A promotion code covered everything: nothing to charge, as Stripe records it.
        session["payment_status"] = "no_payment_required"
        return finish(ctx, session)
    if mode == "setup":
        si = setup_intents.load(ctx, session["setup_intent"])
        if customer and not si.get("customer"):
            # customer_creation=always: the card is saved to the customer made just now.
            si["customer"] = customer
            save(ctx, si, customer=customer)
        return _confirm_setup(ctx, session, si["id"], pm)
    return _confirm_payment(ctx, session, pm, customer)


def resume(ctx: Ctx, session: dict) -> Outcome:
    """Continue after the 3-D Secure page sent the browser back."""
    if session["status"] == "complete":
        return Outcome(redirect=success_url(session))
    if session["mode"] == "payment" and session.get("payment_intent"):
        return _after_intent(ctx, session, payment_intents.load(ctx, session["payment_intent"]))
    if session["mode"] == "setup":
        return _after_intent(ctx, session, setup_intents.load(ctx, session["setup_intent"]))
    if session.get("_subscription"):
        sub = subscriptions.load(ctx, session["_subscription"])
        invoice = fetch(ctx, "invoice", sub["latest_invoice"])
        return _after_intent(ctx, session, payment_intents.load(ctx, invoice["_payment_intent"]))
    if session.get("setup_intent"):
        si = setup_intents.load(ctx, session["setup_intent"])
        if si["status"] == "succeeded":
            return _start_subscription(ctx, session)
        return _after_intent(ctx, session, si)
    return Outcome()


def finish(ctx: Ctx, session: dict) -> Outcome:
    """Complete the session and emit checkout.session.completed."""
    customer = session.get("customer") or session.get("_customer")
    session["customer"] = customer
    if session.get("_subscription"):
        sub = subscriptions.load(ctx, session["_subscription"])
        session.update(subscription=sub["id"], invoice=sub.get("latest_invoice"))
    if session["payment_status"] == "unpaid":
        session["payment_status"] = "paid"
    if session.get("customer_details") is None:
        session["customer_details"] = customer_details(session.get("customer_email"), None)
    for entry in session.get("discounts") or []:
        if entry.get("promotion_code") and session["mode"] == "payment":
            promotion_codes.redeem(ctx, entry["promotion_code"])
    checkout_sessions.transition(ctx, session, "complete")
    return Outcome(redirect=success_url(session) or f"{ctx.url_root}c/pay/{session['id']}")


def apply_promotion_code(ctx: Ctx, session: dict, code: str) -> str | None:
    """Apply a customer-entered promotion code; return an error message when it cannot apply."""
    wanted = code.strip().lower()
    now = ctx.now(customer=session.get("customer"))
    for promo in ctx.store.select("promotion_code"):
        if promo["code"].lower() != wanted or not promotion_codes.is_active(promo, now):
            continue
        if promo.get("customer") and promo["customer"] != session.get("customer"):
            continue
        coupon = ctx.store.get(promo["promotion"]["coupon"], "coupon") or {}
        if coupon.get("amount_off") and coupon.get("currency") != session.get("currency"):
            continue
        session["discounts"] = [{"coupon": None, "promotion_code": promo["id"]}]
        _recompute(session, coupon)
        save(ctx, session)
        return None
    return "This code is invalid."


def remove_promotion_code(ctx: Ctx, session: dict) -> None:
    """Remove the applied promotion code."""
    session["discounts"] = []
    _recompute(session, {})
    save(ctx, session)


def _recompute(session: dict, coupon: dict) -> None:
    """Recompute the discount and the total due today after a code changed."""
    subtotal = session["amount_subtotal"] or 0
    discount = 0
    if coupon.get("percent_off"):
        discount = round_half_up(Fraction(subtotal) * Fraction(str(coupon["percent_off"])) / 100)
    elif coupon.get("amount_off"):
        discount = min(subtotal, coupon["amount_off"])
    session["total_details"]["amount_discount"] = discount
    session["amount_total"] = subtotal - discount
    session["payment_status"] = "unpaid" if session["amount_total"] else "no_payment_required"


def card_error_field(err: StripeError) -> str | None:
    """Return which form field a card error belongs to."""
    param = err.param or ""
    if "number" in param:
        return "number"
    if "exp" in param:
        return "expiry"
    if "cvc" in param:
        return "cvc"
    return None
