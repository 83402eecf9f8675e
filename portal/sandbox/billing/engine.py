"""The billing engine: turns the passage of time into subscription and invoice work.

One loop serves real time and test clocks.  It repeatedly takes the earliest piece of due
work (a subscription or invoice whose hidden ``_due_at`` has passed) among the objects on one
clock (or on no clock), and handles it at its due time: on a test clock the clock's
frozen_time is stepped to each due time first, so every object and event created on the way
carries the time at which Stripe would have created it.

Per subscription, in order of time:
- trialing: customer.subscription.trial_will_end 3 days before trial_end; at trial_end the
  first paid period starts (invoice.created, then customer.subscription.updated to active);
- active / past_due / unpaid: invoice.upcoming a few days before the period ends (see
  SANDBOX_UPCOMING_DAYS), then at period end either the scheduled cancellation
  (customer.subscription.deleted) or the renewal (invoice.created, then
  customer.subscription.updated with the new period);
- incomplete: 23 hours after creation, incomplete_expired and the first invoice voided.
Per refund marked to fail (test card 4000000000005126): it fails when due.
Per billing credit grant with an expires_at: it expires then (what is left is debited).
Per invoice: a subscription draft is finalized one hour after creation (invoice.finalized)
and its payment attempted; failed payments are retried on the dunning schedule.
"""

from __future__ import annotations

from typing import Any

from flask import Flask

from ..core.api import before_handler
from ..core.context import Ctx, background
from ..objects import credit_grants, refunds
from . import collection, cycle, periods, plan_update
from . import subscription_state as subs
from .dunning import incomplete_expires_at

MAX_STEPS = 10_000
CLOCK = "test_helpers.test_clock"


def _next_due(ctx: Ctx, clock_id: str | None, until: int) -> tuple[str, int] | None:
    row = ctx.store.conn.execute(
        "SELECT id, json_extract(body, '$._due_at') AS due FROM objects"
        " WHERE deleted = 0"
        " AND type IN ('subscription', 'invoice', 'refund', 'billing.credit_grant')"
        " AND test_clock IS ?"
        " AND json_extract(body, '$._due_at') IS NOT NULL AND json_extract(body, '$._due_at') <= ?"
        " ORDER BY due, seq LIMIT 1",
        (clock_id, until),
    ).fetchone()
    return (row["id"], int(row["due"])) if row else None


def run_due(ctx: Ctx, clock_id: str | None = None, until: int | None = None) -> int:
    """Handle every piece of billing work due on a clock (or on real time) up to until."""
    clock = ctx.store.get(clock_id, CLOCK) if clock_id else None
    if until is None:
        until = int(clock["frozen_time"]) if clock else ctx.wall_now()
    steps = 0
    while (due := _next_due(ctx, clock_id, until)) is not None:
        steps += 1
        if steps > MAX_STEPS:
            raise RuntimeError(f"billing engine did not settle by {until}")
        obj_id, due_time = due
        if clock is not None and due_time > clock["frozen_time"]:
            clock["frozen_time"] = due_time
            ctx.store.save(clock)
        obj = ctx.store.get(obj_id)
        if obj is None:
            continue
        at = ctx.now(customer=obj["customer"])
        if obj["object"] == "invoice":
            _handle_invoice(ctx, obj, at)
        elif obj["object"] == "refund":
            # A refund to a card that refuses it (test card 4000000000005126) fails now.
            refunds.transition(ctx, obj, "failed")
        elif obj["object"] == credit_grants.GRANT:
            credit_grants.transition(ctx, obj, "expired", due_time)
        else:
            _handle_subscription(ctx, obj, at)
    return steps


def _handle_invoice(ctx: Ctx, invoice: dict[str, Any], at: int) -> None:
    if invoice["status"] == "draft":
        cycle.refresh_metered_lines(ctx, invoice)
        collection.finalize(ctx, invoice, at)
        invoice = ctx.store.get(invoice["id"], "invoice") or invoice
        if invoice["status"] == "open" and invoice["collection_method"] == "charge_automatically":
            collection.attempt_payment(ctx, invoice, at, off_session=True)
    elif invoice["status"] == "open":
        collection.attempt_payment(ctx, invoice, at, off_session=True)
    else:
        collection.save_invoice(ctx, invoice)


def _handle_subscription(ctx: Ctx, sub: dict[str, Any], at: int) -> None:
    status = sub["status"]
    if status == "incomplete":
        if at >= incomplete_expires_at(sub["created"]):
            expire_incomplete(ctx, sub, at)
        return
    if plan_update.expired(sub, at):
        expire_pending_update(ctx, sub, at)
        sub = ctx.store.get(sub["id"], subs.SUBSCRIPTION) or sub
        due = subs.due_at(ctx, sub)
        if due is None or due > at:
            return
    if status == "trialing" and not sub.get("_trial_will_end_sent"):
        sub["_trial_will_end_sent"] = True
        subs.save_subscription(ctx, sub)
        ctx.emit("customer.subscription.trial_will_end", sub)
    if sub.get("cancel_at") and at >= sub["cancel_at"]:
        cancel_scheduled(ctx, sub, at)
    elif status == "trialing":
        if at >= sub["trial_end"]:
            renew(ctx, sub, at)
    elif at >= sub["_period_end"]:
        renew(ctx, sub, at)
    else:
        send_upcoming(ctx, sub, at)


def expire_incomplete(ctx: Ctx, sub: dict[str, Any], at: int) -> None:
    """End an unpaid incomplete subscription and void its first invoice."""
    invoice = ctx.store.get(sub.get("latest_invoice") or "", "invoice")
    if invoice is not None and invoice["status"] == "open":
        collection.void(ctx, invoice, at)
    subs.transition(ctx, sub, "incomplete_expired", at)


def expire_pending_update(ctx: Ctx, sub: dict[str, Any], at: int) -> None:
    """Void the invoice an expired pending update waited for; the change is discarded."""
    invoice = ctx.store.get(plan_update.mark_expired(ctx, sub), "invoice")
    if invoice is not None and invoice["status"] in ("open", "uncollectible"):
        collection.void(ctx, invoice, at)


def next_period(sub: dict[str, Any], start: int) -> tuple[int, int]:
    """Return the billing period starting at start, aligned to the subscription's anchor."""
    interval, count = sub["_interval"]
    return periods.period_containing(sub["billing_cycle_anchor"], interval, count, start)


def renew(ctx: Ctx, sub: dict[str, Any], at: int) -> dict[str, Any]:
    """Close the current period (or trial): create its invoice and move to the next period."""
    before = subs.snapshot(ctx.store, sub)
    trial = sub["status"] == "trialing"
    old = (sub["_period_start"], sub["_period_end"])
    start = sub["trial_end"] if trial else old[1]
    new = next_period(sub, start)
    invoice = cycle.build_invoice(
        ctx,
        sub,
        at,
        billing_reason="subscription_cycle",
        advance=new,
        arrears=None if trial else old,
        period=old,
    )
    cycle.store_new_invoice(ctx, invoice, auto_advance=sub["status"] != "unpaid", at=at)
    subs.set_period(ctx, sub, *new)
    sub["latest_invoice"] = invoice["id"]
    if trial:
        subs.transition(ctx, sub, "active", at, before=before)
    else:
        subs.emit_changes(ctx, sub, before)
    return invoice


def cancel_scheduled(ctx: Ctx, sub: dict[str, Any], at: int) -> None:
    """Carry out cancel_at: bill metered usage of the closing period, then cancel."""
    if sub["status"] != "trialing":
        closing = (sub["_period_start"], min(sub["cancel_at"], sub["_period_end"]))
        final_usage_invoice(ctx, sub, at, closing)
    subs.transition(
        ctx,
        sub,
        "canceled",
        at,
        reason=sub["cancellation_details"].get("reason") or "cancellation_requested",
    )


def final_usage_invoice(ctx: Ctx, sub: dict[str, Any], at: int, period: tuple[int, int]) -> None:
    """Invoice metered usage and pending items left when a subscription ends, if any."""
    terms: dict[str, Any] = {
        "billing_reason": "subscription_cycle",
        "advance": None,
        "arrears": period,
        "period": period,
    }
    probe = cycle.build_invoice(ctx, sub, at, preview=True, **terms)
    if any(line["amount"] for line in probe["_lines"]):
        invoice = cycle.build_invoice(ctx, sub, at, **terms)
        cycle.store_new_invoice(ctx, invoice, auto_advance=True, at=at)
        collection.finalize(ctx, invoice, at)
        if invoice["status"] == "open":
            collection.attempt_payment(ctx, invoice, at, off_session=True)


def send_upcoming(ctx: Ctx, sub: dict[str, Any], at: int) -> None:
    """Emit invoice.upcoming with a preview of the renewal invoice (it has no id)."""
    sub["_upcoming_sent_for"] = sub["_period_end"]
    subs.save_subscription(ctx, sub)
    old = (sub["_period_start"], sub["_period_end"])
    preview = cycle.build_invoice(
        ctx,
        sub,
        old[1],
        billing_reason="upcoming",
        advance=next_period(sub, old[1]),
        arrears=old,
        period=old,
        preview=True,
    )
    preview["id"] = None
    ctx.emit("invoice.upcoming", preview, customer=sub["customer"])


@before_handler
def run_due_now(ctx: Ctx) -> None:
    """Handle billing work that fell due in real time, before an API request is served."""
    request_id, key = ctx.request_id, ctx.idempotency_key
    # Work the engine does on its own is not caused by the request: its events carry no request.
    ctx.request_id = ctx.idempotency_key = None
    try:
        run_due(ctx)
    finally:
        ctx.request_id, ctx.idempotency_key = request_id, key


def run_billing(app: Flask) -> int:
    """Run due real-time billing work in its own transaction (for a timer, CLI or test)."""
    with background(app) as ctx:
        return run_due(ctx)
