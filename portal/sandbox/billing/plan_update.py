"""What a subscription update bills at once, and pending updates that wait for that payment.

Rules (Stripe's documentation, page named beside each):
- docs.stripe.com/billing/subscriptions/change-price and .../billing-cycle: a price with
  another interval, or ``billing_cycle_anchor=now``, resets the billing cycle anchor to the
  time of the update and invoices at once: the new full period of every item, and (unless
  ``proration_behavior=none``) the credit for unused time on the old period.  Otherwise only
  ``always_invoice`` invoices at once (the proration lines).  No prorations while trialing.
- docs.stripe.com/billing/subscriptions/pending-updates-reference: with
  ``payment_behavior=pending_if_incomplete`` the change applies only once that invoice is
  paid; until then ``pending_update`` holds it and the subscription keeps cycling unchanged.
  It expires at the earliest of the trial end, the period end and 23 hours after the update:
  the invoice is voided and the change discarded.  Voiding the invoice discards it too.
  Events: customer.subscription.pending_update_applied / _expired.

The preview (invoices.create_preview) and the update share ``charges``, so both bill the
same lines for the same proration_date.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..core.context import Ctx
from ..core.events import on
from ..core.render import render
from . import changes, periods
from . import subscription_state as subs
from .proration import ProrationLine

PENDING_LIFETIME = 23 * 3600
CHARGING = ("active", "past_due")


@dataclass
class Charges:
    """What an update bills at once: the proration lines and, when the anchor resets, the period."""

    lines: list[tuple[ProrationLine, str | None]]
    triples: list[tuple[dict[str, Any], dict[str, Any], int]]
    terms: tuple[str, int]
    reset: tuple[int, int] | None = None

    def bills_now(self, behavior: str) -> bool:
        """Return whether the update creates and collects an invoice at once."""
        return self.reset is not None or (behavior == "always_invoice" and bool(self.lines))


def current_triples(ctx: Ctx, sub: dict[str, Any]) -> list[tuple[dict, dict, int]]:
    """Return the subscription's (item, price, quantity) triples as they stand."""
    return [
        (item, ctx.store.get(item["price"], "price", include_deleted=True) or {},
         item.get("quantity") or 0)
        for item in subs.items_of(ctx.store, sub["id"])
    ]


def charges(
    ctx: Ctx,
    sub: dict[str, Any],
    plan: list[changes.ItemChange] | None,
    *,
    behavior: str,
    proration_date: int,
    anchor: str | None,
    at: int,
) -> Charges:
    """Return what updating ``sub`` with ``plan`` at ``at`` bills at once."""
    triples = changes.resulting_items(ctx, sub, plan) if plan else current_triples(ctx, sub)
    _currency, terms = changes.check_compatible([price for _, price, _ in triples], sub["currency"])
    result = Charges([], triples, terms)
    if sub["status"] not in CHARGING:
        return result
    prorate = behavior != "none"
    if anchor == "now" or list(terms) != list(sub["_interval"]):
        interval, count = terms
        result.reset = (at, periods.boundary(at, interval, count, 1))
        result.lines = changes.reset_credits(ctx, sub, proration_date) if prorate else []
    elif plan and prorate:
        result.lines = changes.prorations(ctx, sub, plan, proration_date)
    return result


def apply_terms(ctx: Ctx, sub: dict[str, Any], terms: tuple[str, int], reset: list | None) -> None:
    """Give the subscription its new interval and, on a reset, its new anchor and period."""
    sub["_interval"] = list(terms)
    if reset:
        sub["billing_cycle_anchor"] = reset[0]
        subs.set_period(ctx, sub, reset[0], reset[1])


def expires_at(sub: dict[str, Any], at: int) -> int:
    """Return when a pending update made at ``at`` expires."""
    ends = [at + PENDING_LIFETIME, sub["_period_end"]]
    if sub["status"] == "trialing" and sub.get("trial_end"):
        ends.append(sub["trial_end"])
    return min(ends)


def hold(
    ctx: Ctx,
    sub: dict[str, Any],
    entries: list[dict[str, Any]],
    found: Charges,
    invoice_id: str,
    at: int,
) -> None:
    """Record the change an unpaid invoice waits for (hidden until the payment is attempted)."""
    items = {item["id"]: item for item in subs.items_of(ctx.store, sub["id"])}
    sub["_pending_change"] = {
        "invoice": invoice_id,
        "items": entries,
        "terms": list(found.terms),
        "reset": list(found.reset) if found.reset else None,
        "at": at,
        # Debits recorded by the change's invoice, undone if the change is discarded.
        "billed_before": {i: item.get("_billed") for i, item in items.items()},
    }
    subs.save_subscription(ctx, sub)


def publish(ctx: Ctx, sub: dict[str, Any], found: Charges, at: int) -> None:
    """Show a held change as ``pending_update`` once its payment did not go through."""
    before = subs.snapshot(ctx.store, sub)
    new_items = []
    for item, price, quantity in found.triples:
        shown = {k: v for k, v in item.items() if not k.startswith("_")}
        shown["price"] = render(ctx.store, dict(price))
        shown["quantity"] = quantity
        new_items.append(shown)
    sub["pending_update"] = {
        "billing_cycle_anchor": found.reset[0] if found.reset else None,
        "expires_at": expires_at(sub, at),
        "subscription_items": new_items,
        "trial_end": None,
        "trial_from_plan": None,
    }
    subs.emit_changes(ctx, sub, before)


def _held_for(ctx: Ctx, invoice: dict[str, Any]) -> dict[str, Any] | None:
    """Return the subscription whose held change waits for this invoice, if any."""
    stored = ctx.store.get(invoice["id"], "invoice") or invoice
    sub_id = stored.get("subscription")
    sub = ctx.store.get(sub_id, subs.SUBSCRIPTION) if sub_id else None
    if sub and (sub.get("_pending_change") or {}).get("invoice") == invoice["id"]:
        return sub
    return None


@on("invoice.paid")
def apply_when_paid(ctx: Ctx, event: dict) -> None:
    """Apply the held change of a subscription when the invoice it waited for is paid."""
    sub = _held_for(ctx, event["data"]["object"])
    if sub is None:
        return
    held = sub.pop("_pending_change")
    before = subs.snapshot(ctx.store, sub)
    plan = changes.plan(ctx, sub, held["items"])
    changes.apply(ctx, sub, plan, held["at"])
    apply_terms(ctx, sub, tuple(held["terms"]), held["reset"])
    published = sub.get("pending_update") is not None
    sub["pending_update"] = None
    subs.emit_changes(ctx, sub, before)
    if published:
        ctx.emit("customer.subscription.pending_update_applied", sub)


@on("invoice.voided")
def discard_when_voided(ctx: Ctx, event: dict) -> None:
    """Discard the held change of a subscription whose invoice was voided."""
    sub = _held_for(ctx, event["data"]["object"])
    if sub is None:
        return
    held = sub.pop("_pending_change")
    for item_id, billed in held["billed_before"].items():
        item = ctx.store.get(item_id, subs.ITEM)
        if item is not None:
            item["_billed"] = billed
            ctx.store.save(item)
    before = subs.snapshot(ctx.store, sub)
    sub["pending_update"] = None
    subs.emit_changes(ctx, sub, before)
    if held.get("expired"):
        ctx.emit("customer.subscription.pending_update_expired", sub)


def expired(sub: dict[str, Any], at: int) -> bool:
    """Return whether the subscription's pending update has expired by ``at``."""
    pending = sub.get("pending_update")
    return bool(pending and sub.get("_pending_change") and at >= pending["expires_at"])


def mark_expired(ctx: Ctx, sub: dict[str, Any]) -> str:
    """Flag the held change as expired (its invoice is voided next); return that invoice id."""
    sub["_pending_change"]["expired"] = True
    subs.save_subscription(ctx, sub)
    return sub["_pending_change"]["invoice"]
