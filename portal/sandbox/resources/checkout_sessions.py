"""Checkout Sessions: create, retrieve, list, line items, update and expire.

A session's ``url`` opens the sandbox's hosted checkout page (``portal.sandbox.hosted``),
which completes the session: it creates the customer (when needed), the PaymentMethod and
the subscription, PaymentIntent or SetupIntent, then emits ``checkout.session.completed``
and sends the browser to ``success_url`` with ``{CHECKOUT_SESSION_ID}`` replaced.

Rules followed from Stripe's documentation:
- Sessions expire 24 hours after creation unless ``expires_at`` (30 minutes to 24 hours
  ahead) says otherwise; an open session past ``expires_at`` is expired when next read.
- Payment mode creates its PaymentIntent when the customer pays (API 2022-08-01 and later);
  setup mode creates its SetupIntent with the session.
- ``customer_creation`` defaults to ``if_required``: subscription mode always creates a
  customer, payment and setup mode only with ``customer_creation=always``.
- ``amount_total`` is what is due today: 0 during a subscription trial.
"""

from __future__ import annotations

from typing import Any

from ..core.api import route
from ..core.context import Ctx
from ..core.currencies import check_currency
from ..core.errors import invalid, state_error
from ..core.ids import random_token
from ..core.lists import equals, field, filtered, list_of, paginate
from ..core.objects import apply_metadata, fetch, insert, new_object, save
from ..core.params import LIST_SPEC, Anything, Bool, Int, List, Meta, Str, Url, need
from ..objects import checkout_sessions, setup_intents
from . import checkout_line_items

MIN_LIFETIME = 30 * 60
MAX_LIFETIME = 24 * 3600
MODES = ("payment", "setup", "subscription")
LINE_ITEM = {
    "price": Str(),
    "quantity": Int(minimum=1),
    "price_data": Anything(),
    "adjustable_quantity": Anything(),
    "tax_rates": List(Str()),
    "dynamic_tax_rates": List(Str()),
}
CREATE_SPEC = {
    "mode": Str(MODES),
    "line_items": List(LINE_ITEM),
    "success_url": Url(),
    "cancel_url": Url(),
    "customer": Str(),
    "customer_email": Str(),
    "customer_creation": Str(("always", "if_required")),
    "client_reference_id": Str(),
    "metadata": Meta(),
    "currency": Str(),
    "expires_at": Int(),
    "allow_promotion_codes": Bool(),
    "discounts": List({"coupon": Str(), "promotion_code": Str()}),
    "subscription_data": {
        "metadata": Meta(),
        "trial_period_days": Int(minimum=1),
        "trial_end": Int(),
        "description": Str(),
        "default_tax_rates": List(Str()),
    },
    "payment_intent_data": {
        "metadata": Meta(),
        "description": Str(),
        "setup_future_usage": Str(("on_session", "off_session")),
        "receipt_email": Str(),
        "capture_method": Str(),
    },
    "setup_intent_data": {"metadata": Meta(), "description": Str()},
    "payment_method_types": List(Str(("card",))),
    "payment_method_collection": Str(("always", "if_required")),
    "billing_address_collection": Str(("auto", "required")),
    "locale": Str(),
    "submit_type": Str(("auto", "book", "donate", "pay", "subscribe")),
    "ui_mode": Str(("hosted",)),
    "customer_update": Anything(),
    "consent_collection": Anything(),
    "custom_text": Anything(),
    "phone_number_collection": {"enabled": Bool()},
}
# Fields a new session has and leaves empty in the sandbox (no tax, shipping or wallets).
NULL_FIELDS = """
    after_expiration client_secret collected_information consent currency_conversion
    customer_account customer_details integration_identifier invoice managed_payments
    origin_context payment_intent payment_link payment_method_configuration_details permissions
    recovered_from saved_payment_method_options setup_intent shipping_address_collection
    shipping_cost subscription url wallet_options
""".split()
INVOICE_CREATION = {
    "enabled": False,
    "invoice_data": {
        "account_tax_ids": None,
        "custom_fields": None,
        "description": None,
        "footer": None,
        "issuer": None,
        "metadata": {},
        "rendering_options": None,
    },
}
DEFAULT_CUSTOM_TEXT = {
    "after_submit": None,
    "shipping_address": None,
    "submit": None,
    "terms_of_service_acceptance": None,
}


def load(ctx: Ctx, session_id: str) -> dict:
    """Return a Checkout Session (expiring it first when its time has passed) or raise 404."""
    session = fetch(ctx, "checkout.session", session_id, kind="checkout.session")
    if (
        session["status"] == "open"
        and ctx.now(customer=session["customer"]) >= session["expires_at"]
    ):
        expire(ctx, session)
    return session


def expire_due(ctx: Ctx) -> None:
    """Expire every open session whose expires_at has passed (on its customer's clock)."""
    for session in ctx.store.select("checkout.session", "json_extract(body, '$.status') = 'open'"):
        if ctx.now(customer=session["customer"]) >= session["expires_at"]:
            expire(ctx, session)


def session_url(ctx: Ctx, session: dict) -> str:
    """Return the absolute URL of a session's hosted checkout page."""
    return f"{ctx.url_root}c/pay/{session['id']}"


def expire(ctx: Ctx, session: dict) -> dict:
    """Expire an open session: no more payments, ``checkout.session.expired`` is emitted."""
    return checkout_sessions.transition(ctx, session, "expired")


def _check_create(ctx: Ctx, p: dict) -> str:
    """Check the combinations Stripe refuses and return the mode."""
    need(p, "mode")
    mode = p["mode"]
    if mode in ("payment", "subscription"):
        need(p, "line_items")
    elif p.get("line_items"):
        raise invalid("You cannot pass `line_items` in `setup` mode.", "line_items")
    if p.get("customer") and p.get("customer_email"):
        raise invalid(
            "You may only specify one of these parameters: customer, customer_email.",
            "customer_email",
        )
    if p.get("allow_promotion_codes") and p.get("discounts"):
        raise invalid(
            "You may only specify one of these parameters: allow_promotion_codes, discounts.",
            "discounts",
        )
    if "subscription_data" in p and mode != "subscription":
        raise invalid(
            "You can only specify `subscription_data` in `subscription` mode.", "subscription_data"
        )
    if "payment_intent_data" in p and mode != "payment":
        raise invalid(
            "You can only specify `payment_intent_data` in `payment` mode.", "payment_intent_data"
        )
    if "setup_intent_data" in p and mode != "setup":
        raise invalid(
            "You can only specify `setup_intent_data` in `setup` mode.", "setup_intent_data"
        )
    if "customer_creation" in p and mode == "subscription":
        raise invalid(
            "`customer_creation` can only be used in `payment` and `setup` mode.",
            "customer_creation",
        )
    if p.get("customer"):
        fetch(ctx, "customer", p["customer"], kind="customer", param="customer")
    return mode


def _expires_at(ctx: Ctx, p: dict, now: int) -> int:
    """Return the expiry time: 24 hours by default, else 30 minutes to 24 hours from now."""
    if p.get("expires_at") is None:
        return now + MAX_LIFETIME
    value = p["expires_at"]
    if value < now + MIN_LIFETIME:
        raise invalid(
            "The `expires_at` timestamp must be at least 30 minutes from Checkout "
            "Session creation.",
            "expires_at",
        )
    if value > now + MAX_LIFETIME:
        raise invalid(
            "The `expires_at` timestamp must be less than 24 hours from Checkout Session creation.",
            "expires_at",
        )
    return value


def _setup_intent(ctx: Ctx, session: dict, p: dict) -> dict:
    """Create the SetupIntent a setup-mode session collects the card with."""
    data = p.get("setup_intent_data") or {}
    params: dict[str, Any] = {"usage": "off_session", "metadata": data.get("metadata") or {}}
    if session["customer"]:
        params["customer"] = session["customer"]
    if data.get("description"):
        params["description"] = data["description"]
    return setup_intents.new_setup_intent(ctx, params)


def call_handler(ctx: Ctx, handler: Any, params: dict, **url_args: Any) -> dict:
    """Run another resource's API handler inside this transaction with the given params."""
    saved = ctx.params
    ctx.params = params
    try:
        return handler(ctx, **url_args)
    finally:
        ctx.params = saved


@route("/v1/checkout/sessions", methods=["POST"])
def create_session(ctx: Ctx) -> dict:
    """Create a Checkout Session in payment, setup or subscription mode."""
    p = ctx.validate(CREATE_SPEC)
    mode = _check_create(ctx, p)
    customer = p.get("customer")
    now = ctx.now(customer=customer)
    session = new_object(
        ctx, "cs_test", "checkout.session", customer=customer, obj_id=f"cs_test_{random_token(58)}"
    )
    items = checkout_line_items.build(ctx, mode, p.get("line_items") or [])
    currency = (
        items[0]["currency"]
        if items
        else (check_currency(p["currency"]) if p.get("currency") else None)
    )
    subtotal = sum(i["amount_subtotal"] for i in items)
    sub_data = p.get("subscription_data") or {}
    due_now = 0 if sub_data.get("trial_period_days") or sub_data.get("trial_end") else subtotal
    session.update(dict.fromkeys(NULL_FIELDS))
    session.update(
        {
            "adaptive_pricing": {"enabled": False},
            "allow_promotion_codes": p.get("allow_promotion_codes"),
            "amount_subtotal": due_now if items else None,
            "amount_total": due_now if items else None,
            "automatic_tax": {
                "enabled": False,
                "liability": None,
                "provider": None,
                "status": None,
            },
            "currency": currency,
            "custom_fields": [],
            "custom_text": {**DEFAULT_CUSTOM_TEXT, **(p.get("custom_text") or {})},
            "customer": customer,
            "customer_creation": None
            if mode == "subscription"
            else (p.get("customer_creation") or "if_required"),
            "discounts": [
                {"coupon": d.get("coupon"), "promotion_code": d.get("promotion_code")}
                for d in p.get("discounts") or []
            ],
            "expires_at": _expires_at(ctx, p, now),
            "invoice_creation": INVOICE_CREATION if mode == "payment" else None,
            "metadata": {},
            "mode": mode,
            "payment_method_collection": "always" if mode == "subscription" else None,
            "payment_method_options": {},
            "payment_method_types": p.get("payment_method_types") or ["card"],
            "payment_status": "no_payment_required"
            if mode == "setup" or (items and not due_now)
            else "unpaid",
            "phone_number_collection": {
                "enabled": bool((p.get("phone_number_collection") or {}).get("enabled"))
            },
            "shipping_options": [],
            "status": "open",
            "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0}
            if items
            else None,
            "ui_mode": "hosted",
            "_line_items": list_of(items, f"/v1/checkout/sessions/{session['id']}/line_items"),
            "_subscription_data": sub_data,
            "_payment_intent_data": p.get("payment_intent_data") or {},
            "_form_token": random_token(32),
        }
    )
    for key in (
        "billing_address_collection",
        "cancel_url",
        "client_reference_id",
        "consent_collection",
        "customer_email",
        "locale",
        "submit_type",
        "success_url",
    ):
        session[key] = p.get(key)
    session["url"] = session_url(ctx, session)
    apply_metadata(session, p)
    insert(ctx, session, customer=customer)
    if mode == "setup":
        session["setup_intent"] = _setup_intent(ctx, session, p)["id"]
        save(ctx, session)
    return session


@route("/v1/checkout/sessions/<session_id>", methods=["GET"])
def retrieve_session(ctx: Ctx, session_id: str) -> dict:
    """Retrieve a Checkout Session (``expand`` line_items, subscription, intents ...)."""
    ctx.validate({})
    return load(ctx, session_id)


@route("/v1/checkout/sessions/<session_id>", methods=["POST"])
def update_session(ctx: Ctx, session_id: str) -> dict:
    """Update a session's metadata."""
    p = ctx.validate({"metadata": Meta()})
    session = load(ctx, session_id)
    apply_metadata(session, p)
    return save(ctx, session)


@route("/v1/checkout/sessions/<session_id>/line_items", methods=["GET"])
def list_session_line_items(ctx: Ctx, session_id: str) -> dict:
    """List a session's line items (one page of the stored items)."""
    p = ctx.validate({"limit": Int(), "starting_after": Str(), "ending_before": Str()})
    session = load(ctx, session_id)
    url = f"/v1/checkout/sessions/{session_id}/line_items"
    return checkout_line_items.page(session["_line_items"]["data"], p, url)


@route("/v1/checkout/sessions/<session_id>/expire", methods=["POST"])
def expire_session(ctx: Ctx, session_id: str) -> dict:
    """Expire an open session so nobody can pay it any more."""
    ctx.validate({})
    session = load(ctx, session_id)
    if session["status"] != "open":
        raise state_error(
            'Only Checkout Sessions with a status in ["open"] can be expired.',
            "checkout_session_unexpected_state",
        )
    return expire(ctx, session)


@route("/v1/checkout/sessions", methods=["GET"])
def list_sessions(ctx: Ctx) -> dict:
    """List sessions, filtered by customer, status, payment_intent, subscription."""
    p = ctx.validate(
        {
            **LIST_SPEC,
            "customer": Str(),
            "status": Str(("open", "complete", "expired")),
            "payment_intent": Str(),
            "subscription": Str(),
            "payment_link": Str(),
            "customer_details": {"email": Str()},
        }
    )
    expire_due(ctx)
    filters = {
        key: equals(field(key))
        for key in (
            "customer",
            "status",
            "payment_intent",
            "subscription",
            "payment_link",
            "customer_details.email",
        )
    }
    return paginate(
        ctx.store, p, "/v1/checkout/sessions", obj_type="checkout.session", **filtered(p, filters)
    )
