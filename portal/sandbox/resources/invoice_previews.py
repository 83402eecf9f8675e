"""``POST /v1/invoices/create_preview``: the invoice a subscription (change) would produce.

With ``subscription_details[items]`` and the default ``create_prorations`` the preview is the
next renewal invoice: pending items, the prorations the change would create at
``subscription_details[proration_date]`` (default now), next period's charges at the new
prices and the usage of the current period.  With ``always_invoice`` it is the invoice the
update would bill at once (prorations only).  Proration lines come from the same code as the
update itself, so an update with the same proration_date bills exactly these amounts.
Previews are not stored; their id starts with ``upcoming_in_`` and line ids with ``il_tmp_``.
"""

from __future__ import annotations

from typing import Any

from ..billing import catalog, changes, cycle, engine, invoice_build, periods, plan_update
from ..core.api import route
from ..core.context import Ctx
from ..core.errors import invalid, required
from ..core.ids import new_id
from ..core.objects import fetch
from ..core.params import Anything, Bool, Int, List, Str
from .subscriptions import DISCOUNT_SPEC, ITEM_SPEC

DETAILS_SPEC = {
    "items": List(ITEM_SPEC),
    "proration_behavior": Str(changes.PRORATION_BEHAVIORS),
    "proration_date": Int(),
    "cancel_at_period_end": Bool(),
    "default_tax_rates": List(Str()),
    "trial_end": Anything(),
    "billing_cycle_anchor": Str(("now", "unchanged")),
    "billing_mode": {"type": Str(("classic", "flexible"))},
    "cancel_now": Bool(),
    "cancel_at": Anything(),
    "resume_at": Anything(),
    "start_date": Anything(),
}
PREVIEW_SPEC = {
    "customer": Str(),
    "subscription": Str(),
    "subscription_details": DETAILS_SPEC,
    "discounts": DISCOUNT_SPEC,
    "automatic_tax": Anything(),
    "currency": Str(),
    "preview_mode": Str(("next", "recurring")),
}


@route("/v1/invoices/create_preview", methods=["POST"])
def create_preview(ctx: Ctx) -> dict:
    """Return the invoice a subscription, a subscription change or pending items would produce."""
    p = ctx.validate(PREVIEW_SPEC)
    details = p.get("subscription_details") or {}
    if p.get("subscription"):
        sub = fetch(
            ctx, "subscription", p["subscription"], kind="subscription", param="subscription"
        )
        if p.get("customer") and p["customer"] != sub["customer"]:
            raise invalid("The subscription does not belong to this customer.", "customer")
        invoice = _subscription_preview(ctx, sub, details, p.get("preview_mode") or "next")
    else:
        if not p.get("customer"):
            raise required("customer")
        customer = fetch(ctx, "customer", p["customer"], kind="customer", param="customer")
        if details.get("items"):
            invoice = _new_subscription_preview(ctx, customer, details)
        else:
            invoice = _pending_items_preview(ctx, customer, p.get("currency"))
    return invoice_build.apply_balance_preview(ctx.store, invoice)


def _subscription_preview(
    ctx: Ctx, sub: dict[str, Any], details: dict[str, Any], mode: str
) -> dict:
    at = ctx.now(customer=sub["customer"])
    behavior = details.get("proration_behavior") or "create_prorations"
    preview_sub = dict(sub)
    if "default_tax_rates" in details:
        preview_sub["default_tax_rates"] = catalog.tax_rate_objects(
            ctx, details["default_tax_rates"], "subscription_details[default_tax_rates]"
        )
    mode_asked = (details.get("billing_mode") or {}).get("type")
    if mode_asked and mode_asked != sub["billing_mode"]["type"]:
        raise invalid(
            "subscription_details[billing_mode] must match the subscription's billing mode.",
            "subscription_details[billing_mode][type]",
        )
    plan = None
    if details.get("items"):
        plan = changes.plan(ctx, sub, details["items"], prefix="subscription_details[items]")
    found = None
    if plan or details.get("billing_cycle_anchor") == "now":
        found = plan_update.charges(
            ctx,
            sub,
            plan,
            behavior=behavior,
            proration_date=details.get("proration_date") or at,
            anchor=details.get("billing_cycle_anchor"),
            at=at,
        )
    items = found.triples if found else None
    if mode == "recurring":
        return _recurring_preview(ctx, preview_sub, found, at)
    extra = [
        cycle.proration_invoice_item(ctx, sub, line, item_id, at, preview=True)
        for line, item_id in (found.lines if found else [])
    ]
    if found is not None and found.bills_now(behavior):
        return cycle.build_invoice(
            ctx,
            preview_sub,
            at,
            billing_reason="subscription_update",
            advance=found.reset,
            arrears=None,
            period=(at, at),
            items=items,
            extra=extra,
            preview=True,
        )
    trial = sub["status"] == "trialing"
    start = sub["trial_end"] if trial else sub["_period_end"]
    ending = details.get("cancel_at_period_end", sub["cancel_at_period_end"])
    old = (sub["_period_start"], sub["_period_end"])
    return cycle.build_invoice(
        ctx,
        preview_sub,
        at,
        billing_reason="upcoming",
        advance=None if ending else engine.next_period(sub, start),
        arrears=None if trial else old,
        period=old,
        items=items,
        extra=extra,
        preview=True,
    )


def _recurring_preview(
    ctx: Ctx, sub: dict[str, Any], found: plan_update.Charges | None, at: int
) -> dict:
    """Return the first full renewal after the change: recurring charges, no prorations.

    docs.stripe.com/api/invoices/create_preview (preview_mode=recurring): the recurring
    amounts the subscription bills once the change is made, without one-time charges.
    """
    terms = found.terms if found else tuple(sub["_interval"])
    if found is not None and found.reset is not None:
        start = found.reset[1]
        anchor = found.reset[0]
    else:
        start = sub["trial_end"] if sub["status"] == "trialing" else sub["_period_end"]
        anchor = sub["billing_cycle_anchor"]
    advance = periods.period_containing(anchor, terms[0], terms[1], start)
    return cycle.build_invoice(
        ctx,
        sub,
        at,
        billing_reason="upcoming",
        advance=advance,
        arrears=None,
        period=(advance[0], advance[0]),
        items=found.triples if found else None,
        include_pending=False,
        preview=True,
    )


def _new_subscription_preview(ctx: Ctx, customer: dict[str, Any], details: dict) -> dict:
    plan = changes.plan(ctx, None, details["items"], prefix="subscription_details[items]")
    currency, (interval, count) = changes.check_compatible([c.price for c in plan])
    at = ctx.now(customer=customer["id"])
    sub = {
        "id": None,
        "customer": customer["id"],
        "currency": currency,
        "metadata": {},
        "collection_method": "charge_automatically",
        "billing_mode": {"type": (details.get("billing_mode") or {}).get("type") or "flexible"},
        "days_until_due": None,
        "discounts": [],
        "default_tax_rates": catalog.tax_rate_objects(
            ctx, details.get("default_tax_rates"), "subscription_details[default_tax_rates]"
        ),
    }
    triples = [
        ({"id": None, "subscription": None, "tax_rates": c.tax_rates or []}, c.price, c.quantity)
        for c in plan
    ]
    period = (at, periods.boundary(at, interval, count, 1))
    return cycle.build_invoice(
        ctx,
        sub,
        at,
        billing_reason="subscription_create",
        advance=period,
        arrears=None,
        period=(at, at),
        items=triples,
        include_pending=False,
        preview=True,
    )


def _pending_items_preview(ctx: Ctx, customer: dict[str, Any], currency: str | None) -> dict:
    at = ctx.now(customer=customer["id"])
    pending = cycle.pending_items(ctx, customer["id"], None)
    currency = (
        currency
        or (pending[0]["currency"] if pending else None)
        or customer.get("currency")
        or "usd"
    )
    invoice = invoice_build.new_invoice(
        ctx,
        customer,
        at=at,
        billing_reason="manual",
        currency=currency,
        invoice_id=new_id("upcoming_in"),
    )
    for ii in pending:
        if ii["currency"] == currency:
            invoice_build.add_invoice_item_line(invoice, ii, temporary=True)
    return invoice_build.recompute(ctx.store, invoice)
