"""Subscriptions: create, retrieve, list and cancel (updates live in ``subscription_updates``).

The first invoice is created and finalized with the subscription.  ``payment_behavior``:
``allow_incomplete`` (default) attempts payment on-session and leaves the subscription
incomplete when it fails or needs authentication; ``default_incomplete`` only creates the
PaymentIntent for the client to confirm; ``error_if_incomplete`` answers 402 and creates
nothing when the first payment does not succeed.  A first invoice of 0 (trial, full
discount) is paid at once.
"""

from __future__ import annotations

from ..billing import catalog, changes, collection, cycle, discounts, engine, periods, proration
from ..billing import subscription_state as subs
from ..core.api import route
from ..core.context import Ctx
from ..core.errors import StripeError, invalid
from ..core.lists import Filter, equals, field, filtered, paginate
from ..core.objects import fetch, new_object
from ..core.params import LIST_SPEC, Anything, Bool, Int, List, Meta, Str, need
from ..core.render import render, renderer
from ..core.store import Store
from ..objects.payment_methods import decline_error

ITEM_SPEC = {
    "id": Str(),
    "price": Str(),
    "quantity": Int(minimum=0),
    "deleted": Bool(),
    "metadata": Meta(),
    "tax_rates": List(Str()),
    "clear_usage": Bool(),
    "discounts": Anything(),
}
DISCOUNT_SPEC = List({"coupon": Str(), "promotion_code": Str(), "discount": Str()})
BEHAVIORS = ("allow_incomplete", "default_incomplete", "error_if_incomplete")
COMMON_SPEC = {
    "coupon": Str(),
    "promotion_code": Str(),
    "discounts": DISCOUNT_SPEC,
    "default_payment_method": Str(),
    "default_tax_rates": List(Str()),
    "description": Str(),
    "metadata": Meta(),
    "payment_behavior": Str(BEHAVIORS),
    "off_session": Bool(),
    "trial_end": Anything(),
    "cancel_at_period_end": Bool(),
    "days_until_due": Int(minimum=0),
    "collection_method": Str(("charge_automatically", "send_invoice")),
    "payment_settings": Anything(),
    "automatic_tax": Anything(),
}
CREATE_SPEC = {
    **COMMON_SPEC,
    "customer": Str(),
    "items": List(ITEM_SPEC),
    "trial_period_days": Int(minimum=0),
    "currency": Str(),
    "trial_from_plan": Bool(),
    "billing_mode": {"type": Str(("classic", "flexible"))},
    "billing_cycle_anchor": Int(),
    "proration_behavior": Str(("create_prorations", "none")),
}
# docs.stripe.com/billing/subscriptions/pending-updates-reference: what a pending update holds.
STATUSES = (
    "active",
    "all",
    "canceled",
    "ended",
    "incomplete",
    "incomplete_expired",
    "past_due",
    "paused",
    "trialing",
    "unpaid",
)


@renderer("subscription")
def _render(store: Store, sub: dict) -> dict:
    """Fill ``items`` from the stored subscription items."""
    items = [render(store, item) for item in subs.items_of(store, sub["id"])]
    sub["items"] = {
        "object": "list",
        "data": items,
        "has_more": False,
        "url": f"/v1/subscription_items?subscription={sub['id']}",
    }
    return sub


def load(ctx: Ctx, sub_id: str, param: str | None = "id") -> dict:
    """Return a subscription or raise 404 "No such subscription"."""
    return fetch(ctx, "subscription", sub_id, kind="subscription", param=param)


def check_payment_method(ctx: Ctx, customer_id: str, pm_id: str | None) -> None:
    if pm_id is None:
        return
    pm = ctx.store.get(pm_id, "payment_method")
    if pm is None or pm.get("customer") != customer_id:
        raise invalid(
            f"The customer does not have a payment method with the ID {pm_id}. The "
            "payment method must be attached to the customer.",
            "default_payment_method",
            "resource_missing",
        )


def discounts_of(ctx: Ctx, sub: dict, p: dict, at: int) -> list[str] | None:
    """Create discount objects for coupon / promotion_code / discounts[] parameters."""
    entries = discounts.entries_of(p)
    if entries is None:
        return None
    return discounts.create_discounts(
        ctx,
        entries,
        customer_id=sub["customer"],
        at=at,
        subscription_id=sub["id"],
        clock_id=sub.get("test_clock"),
    )


def _trial_end(p: dict, at: int) -> int | None:
    if p.get("trial_end") not in (None, ""):
        if p["trial_end"] == "now":
            return None
        try:
            value = int(p["trial_end"])
        except ValueError:
            raise invalid(f"Invalid integer: {p['trial_end']}", "trial_end") from None
        if value <= at:
            raise invalid(
                "Invalid timestamp: must be an integer Unix timestamp in the future.", "trial_end"
            )
        return value
    if p.get("trial_period_days"):
        return at + periods.days(p["trial_period_days"])
    return None


def _future_anchor(p: dict, at: int, trial_end: int | None) -> int | None:
    """Return a billing_cycle_anchor given on create, which must lie in the future."""
    anchor = p.get("billing_cycle_anchor")
    if anchor is None:
        return None
    if trial_end:
        raise invalid(
            "The sandbox does not support billing_cycle_anchor together with a trial yet.",
            "billing_cycle_anchor",
        )
    if anchor <= at:
        raise invalid(
            "Invalid timestamp: billing_cycle_anchor must be in the future.",
            "billing_cycle_anchor",
        )
    return anchor


def _bill_until_anchor(ctx: Ctx, sub: dict, at: int, anchor: int) -> None:
    """Prorate each item from now to the anchor, over the full period the anchor closes.

    docs.stripe.com/billing/subscriptions/billing-cycle: a future anchor bills the time until
    it as a proration on the first invoice, then full periods from the anchor.
    """
    interval, count = sub["_interval"]
    full_start = periods.boundary(anchor, interval, count, -1)
    for item in subs.items_of(ctx.store, sub["id"]):
        price = ctx.store.get(item["price"], "price") or {}
        state = proration.ItemState(
            price, item.get("quantity") or 0, catalog.product_name(ctx.store, price)
        )
        for line in proration.item_change_prorations(None, state, full_start, anchor, at):
            cycle.proration_invoice_item(ctx, sub, line, item["id"], at)


@route("/v1/subscriptions", methods=["POST"])
def create_subscription(ctx: Ctx) -> dict:
    """Create a subscription, its items and first invoice, and collect that invoice."""
    p = ctx.validate(CREATE_SPEC)
    need(p, "customer", "items")
    customer = fetch(ctx, "customer", p["customer"], kind="customer", param="customer")
    check_payment_method(ctx, customer["id"], p.get("default_payment_method"))
    plan = changes.plan(ctx, None, p["items"])
    currency, (interval, count) = changes.check_compatible([c.price for c in plan])
    at = ctx.now(customer=customer["id"])
    trial_end = _trial_end(p, at)
    anchor = _future_anchor(p, at, trial_end)
    start, end = (at, trial_end) if trial_end else (at, periods.boundary(at, interval, count, 1))
    if anchor:
        end = anchor
    sub = new_object(ctx, "sub", "subscription", customer=customer["id"])
    sub.update(subs.new_body(ctx, customer, p, currency, at, trial_end))
    if anchor:
        sub["billing_cycle_anchor"] = anchor
    sub.update(_interval=[interval, count], _period_start=start, _period_end=end)
    ctx.store.insert(sub, customer=customer["id"], test_clock=customer.get("test_clock"))
    for change in plan:
        changes.new_item(
            ctx,
            sub,
            change.price,
            change.quantity,
            at,
            metadata=change.metadata,
            tax_rates=change.tax_rates,
        )
    sub["discounts"] = discounts_of(ctx, sub, p, at) or []
    subs.save_subscription(ctx, sub)
    if anchor and p.get("proration_behavior") != "none":
        _bill_until_anchor(ctx, sub, at, anchor)
    invoice = cycle.build_invoice(
        ctx,
        sub,
        at,
        billing_reason="subscription_create",
        advance=None if anchor else (start, end),
        arrears=None,
        period=(at, at),
        trial=bool(trial_end),
    )
    discounts.check_minimum_amount(ctx, sub["discounts"], invoice)
    sub["latest_invoice"] = invoice["id"]
    subs.save_subscription(ctx, sub)
    # docs.stripe.com/api/events/object: the event carries the object as it is when emitted,
    # and a new subscription already names its first invoice (payment comes after).
    ctx.emit("customer.subscription.created", sub)
    cycle.store_new_invoice(ctx, invoice, auto_advance=True, at=at)
    if sub["collection_method"] == "send_invoice":
        # Stripe finalizes (and sends) a send_invoice draft an hour later; the engine does it.
        return load(ctx, sub["id"])
    collection.finalize(ctx, invoice, at)
    invoice = ctx.store.get(invoice["id"], "invoice") or invoice
    if invoice["status"] == "open":
        _collect_first(
            ctx,
            invoice,
            at,
            p.get("payment_behavior") or "allow_incomplete",
            off_session=bool(p.get("off_session")),
        )
    return load(ctx, sub["id"])


def _collect_first(ctx: Ctx, invoice: dict, at: int, behavior: str, *, off_session: bool) -> None:
    """Collect the first invoice according to payment_behavior."""
    if behavior == "default_incomplete":
        collection.create_invoice_payment_intent(
            ctx, invoice, at, confirm=False, off_session=off_session
        )
        return
    pi = collection.attempt_payment(ctx, invoice, at, off_session=off_session)
    if behavior != "error_if_incomplete" or pi is not None and pi["status"] == "succeeded":
        return
    if pi is None:
        raise invalid(
            "This customer has no attached payment source or default payment method. "
            "Please consider adding a default payment method."
        )
    pm = ctx.store.get(pi["payment_method"], "payment_method") or {}
    error = pi.get("last_payment_error") or {
        "code": "authentication_required",
        "decline_code": "authentication_required",
        "message": "Your card was declined. This transaction requires authentication.",
    }
    raise decline_error(pm, error, extra={"payment_intent": render(ctx.store, pi)})


@route("/v1/subscriptions/<obj_id>", methods=["GET"])
def retrieve_subscription(ctx: Ctx, obj_id: str) -> dict:
    """Retrieve a subscription."""
    ctx.validate({})
    return load(ctx, obj_id)


def _status_condition(status: str | None) -> str:
    """Return the condition of the list's status filter (canceled ones only when asked)."""
    if status == "ended":
        return f"{field('status')} IN ('canceled', 'incomplete_expired')"
    if status == "all":
        return ""
    return f"{field('status')} = ?" if status else f"{field('status')} != 'canceled'"


FILTERS = {
    "status": Filter(
        _status_condition,
        lambda status: [status] if status not in (None, "all", "ended") else [],
        when="always",
    ),
    "customer": equals("customer"),
    "test_clock": equals("test_clock"),
    "collection_method": equals(field("collection_method")),
    "price": Filter(
        "EXISTS (SELECT 1 FROM objects i WHERE i.type = 'subscription_item'"
        " AND i.deleted = 0 AND json_extract(i.body, '$.subscription') = objects.id"
        " AND json_extract(i.body, '$.price') = ?)"
    ),
}


@route("/v1/subscriptions", methods=["GET"])
def list_subscriptions(ctx: Ctx) -> dict:
    """List subscriptions (canceled ones only when asked), by customer, status, price or clock."""
    p = ctx.validate(
        {
            **LIST_SPEC,
            "customer": Str(),
            "status": Str(STATUSES),
            "price": Str(),
            "test_clock": Str(),
            "collection_method": Str(),
        }
    )
    return paginate(
        ctx.store, p, "/v1/subscriptions", obj_type="subscription", **filtered(p, FILTERS)
    )


@route("/v1/subscriptions/<obj_id>", methods=["DELETE"])
def cancel_subscription(ctx: Ctx, obj_id: str) -> dict:
    """Cancel a subscription now, optionally crediting unused time and invoicing at once."""
    p = ctx.validate(
        {
            "invoice_now": Bool(),
            "prorate": Bool(),
            "cancellation_details": {"comment": Str(), "feedback": Str()},
        }
    )
    sub = load(ctx, obj_id)
    if sub["status"] in subs.ENDED:
        raise StripeError(
            f"No such subscription: '{obj_id}'", status=404, code="resource_missing", param="id"
        )
    at = ctx.now(customer=sub["customer"])
    if p.get("prorate") and sub["status"] in ("active", "past_due"):
        for item in subs.items_of(ctx.store, sub["id"]):
            price = ctx.store.get(item["price"], "price", include_deleted=True) or {}
            state = changes.item_state(ctx, sub, item, price)
            for line in proration.item_change_prorations(
                state, None, sub["_period_start"], sub["_period_end"], at
            ):
                cycle.proration_invoice_item(ctx, sub, line, item["id"], at)
    if p.get("invoice_now"):
        engine.final_usage_invoice(ctx, sub, at, (sub["_period_start"], at))
    if p.get("cancellation_details"):
        sub["cancellation_details"] = {**sub["cancellation_details"], **p["cancellation_details"]}
    subs.transition(ctx, sub, "canceled", at, reason="cancellation_requested")
    return load(ctx, sub["id"])
