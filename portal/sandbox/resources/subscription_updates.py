"""``POST /v1/subscriptions/:id``: item changes with prorations, anchor resets, pending updates.

What an update bills at once, and when it waits for that payment, is decided in
``billing.plan_update`` (shared with invoices.create_preview); this module decodes the
parameters, applies the other settings and collects the invoice.
"""

from __future__ import annotations

from ..billing import catalog, changes, collection, cycle, engine, plan_update
from ..billing import subscription_state as subs
from ..core.api import route
from ..core.context import Ctx
from ..core.errors import invalid
from ..core.objects import apply_metadata
from ..core.params import Int, List, Str
from .subscriptions import (
    BEHAVIORS,
    COMMON_SPEC,
    ITEM_SPEC,
    check_payment_method,
    discounts_of,
    load,
)

PENDING_ATTRIBUTES = {"expand", "payment_behavior", "proration_behavior", "proration_date",
                      "billing_cycle_anchor", "items", "off_session"}
UPDATE_SPEC = {
    **COMMON_SPEC,
    "payment_behavior": Str((*BEHAVIORS, "pending_if_incomplete")),
    "billing_cycle_anchor": Str(("now", "unchanged")),
    "items": List(ITEM_SPEC),
    "proration_behavior": Str(changes.PRORATION_BEHAVIORS),
    "proration_date": Int(),
    "cancellation_details": {"comment": Str(), "feedback": Str()},
}


@route("/v1/subscriptions/<obj_id>", methods=["POST"])
def update_subscription(ctx: Ctx, obj_id: str) -> dict:
    """Update items (with prorations), cancellation at period end, payment method and more."""
    p = ctx.validate(UPDATE_SPEC)
    sub = load(ctx, obj_id)
    if sub["status"] in subs.ENDED:
        if set(p) - {"metadata", "cancellation_details"}:
            raise invalid(
                "A canceled subscription can only update its cancellation_details and metadata."
            )
    if p.get("trial_end") not in (None, "", "now"):
        raise invalid(
            "The sandbox does not support trial_end as a timestamp on update yet.", "trial_end"
        )
    at = ctx.now(customer=sub["customer"])
    before = subs.snapshot(ctx.store, sub)
    behavior = p.get("proration_behavior") or "create_prorations"
    plan = changes.plan(ctx, sub, p["items"]) if p.get("items") else None
    found = None
    if plan or p.get("billing_cycle_anchor") == "now":
        found = plan_update.charges(
            ctx,
            sub,
            plan,
            behavior=behavior,
            proration_date=p.get("proration_date") or at,
            anchor=p.get("billing_cycle_anchor"),
            at=at,
        )
    if p.get("payment_behavior") == "pending_if_incomplete":
        if set(p) - PENDING_ATTRIBUTES:
            raise invalid(
                "payment_behavior=pending_if_incomplete only supports updates of "
                + ", ".join(sorted(PENDING_ATTRIBUTES - {"expand"})) + ".",
                "payment_behavior",
            )
        if found is not None and found.bills_now(behavior) and (
            sub["collection_method"] == "charge_automatically"
        ):
            return _update_when_paid(ctx, sub, p, found, before, at)
    if plan:
        changes.apply(ctx, sub, plan, at)
    if found is not None:
        plan_update.apply_terms(ctx, sub, found.terms, found.reset)
        for line, item_id in found.lines:
            cycle.proration_invoice_item(ctx, sub, line, item_id, at)
    _apply_settings(ctx, sub, p, at)
    invoice = None
    if found is not None and found.bills_now(behavior):
        invoice = _update_invoice(ctx, sub, found.reset, at)
    subs.emit_changes(ctx, sub, before)
    if invoice is not None:
        _collect_update(ctx, sub, invoice, at, bool(p.get("off_session")))
    if p.get("trial_end") == "now" and sub["status"] == "trialing":
        _end_trial_now(ctx, load(ctx, sub["id"]), at, bool(p.get("off_session")))
    return load(ctx, sub["id"])


def _update_invoice(ctx: Ctx, sub: dict, reset: tuple | None, at: int, items=None) -> dict:
    """Build and store the invoice an update bills at once (a new period on an anchor reset)."""
    invoice = cycle.build_invoice(
        ctx,
        sub,
        at,
        billing_reason="subscription_update",
        advance=reset,
        arrears=None,
        period=(at, at),
        items=items,
    )
    cycle.store_new_invoice(ctx, invoice, auto_advance=True, at=at)
    sub["latest_invoice"] = invoice["id"]
    return invoice


def _collect_update(ctx: Ctx, sub: dict, invoice: dict, at: int, off_session: bool) -> None:
    """Finalize an update's invoice at once and try to collect it."""
    collection.finalize(ctx, invoice, at)
    invoice = ctx.store.get(invoice["id"], "invoice") or invoice
    if invoice["status"] == "open" and sub["collection_method"] == "charge_automatically":
        collection.attempt_payment(ctx, invoice, at, off_session=off_session)


def _update_when_paid(ctx: Ctx, sub: dict, p: dict, found, before: dict, at: int) -> dict:
    """Bill an update now and apply it only once paid (payment_behavior=pending_if_incomplete)."""
    for line, item_id in found.lines:
        cycle.proration_invoice_item(ctx, sub, line, item_id, at)
    invoice = _update_invoice(ctx, sub, found.reset, at, items=found.triples)
    plan_update.hold(ctx, sub, p.get("items") or [], found, invoice["id"], at)
    subs.emit_changes(ctx, sub, before)
    _collect_update(ctx, sub, invoice, at, bool(p.get("off_session")))
    sub = load(ctx, sub["id"])
    if sub.get("_pending_change"):
        plan_update.publish(ctx, sub, found, at)
    return load(ctx, sub["id"])


def _end_trial_now(ctx: Ctx, sub: dict, at: int, off_session: bool) -> None:
    """End the trial now: the anchor moves to now and the first period is invoiced and collected.

    docs.stripe.com/billing/subscriptions/trials: trial_end=now ends the trial immediately.
    """
    sub["trial_end"] = at
    sub["billing_cycle_anchor"] = at
    invoice = engine.renew(ctx, sub, at)
    _collect_update(ctx, sub, invoice, at, off_session)


def _apply_settings(ctx: Ctx, sub: dict, p: dict, at: int) -> None:
    """Apply the non-item fields of an update."""
    if "default_payment_method" in p:
        check_payment_method(ctx, sub["customer"], p["default_payment_method"])
        sub["default_payment_method"] = p["default_payment_method"]
    if "default_tax_rates" in p:
        sub["default_tax_rates"] = catalog.tax_rate_objects(
            ctx, p["default_tax_rates"], "default_tax_rates"
        )
    for key in ("description", "days_until_due", "collection_method"):
        if key in p:
            sub[key] = p[key]
    if p.get("cancellation_details"):
        sub["cancellation_details"] = {**sub["cancellation_details"], **p["cancellation_details"]}
    if "cancel_at_period_end" in p and sub["status"] not in subs.ENDED:
        if p["cancel_at_period_end"]:
            sub.update(cancel_at_period_end=True, cancel_at=sub["_period_end"], canceled_at=at)
            sub["cancellation_details"]["reason"] = "cancellation_requested"
        else:
            sub.update(cancel_at_period_end=False, cancel_at=None, canceled_at=None)
            sub["cancellation_details"]["reason"] = None
    applied = discounts_of(ctx, sub, p, at)
    if applied is not None:
        sub["discounts"] = applied
    apply_metadata(sub, p)
