"""Subscription state: items, periods, the status transition function and due times.

Every status change goes through ``transition`` so the allowed moves and their events live in
one place.  ``save_subscription`` stamps the hidden ``_due_at`` (the next moment the billing
engine must look at the subscription) so the engine finds due work with one indexed query.
"""

from __future__ import annotations

import copy
from typing import Any

from ..core.context import Ctx
from ..core.errors import invalid
from ..core.events import diff
from ..core.objects import apply_metadata
from ..core.render import render
from ..core.store import Store
from . import catalog
from .dunning import DunningPolicy, incomplete_expires_at
from .invoice_state import save_invoice
from .periods import days

SUBSCRIPTION = "subscription"
ITEM = "subscription_item"
TRIAL_WILL_END_NOTICE = days(3)
ENDED = ("canceled", "incomplete_expired")
ALLOWED = {
    "incomplete": {"active", "incomplete_expired", "canceled"},
    "trialing": {"active", "past_due", "unpaid", "canceled"},
    "active": {"past_due", "unpaid", "canceled"},
    "past_due": {"active", "unpaid", "canceled"},
    "unpaid": {"active", "canceled"},
}


def policy(ctx: Ctx) -> DunningPolicy:
    """Return the retry policy configured for this sandbox (SANDBOX_DUNNING_FINAL_ACTION)."""
    return DunningPolicy(final_action=ctx.config.get("SANDBOX_DUNNING_FINAL_ACTION", "cancel"))


def upcoming_notice(ctx: Ctx) -> int:
    """Return how long before a renewal invoice.upcoming is sent (SANDBOX_UPCOMING_DAYS, 7)."""
    return days(int(ctx.config.get("SANDBOX_UPCOMING_DAYS", 7)))


def items_of(store: Store, subscription_id: str) -> list[dict[str, Any]]:
    """Return a subscription's items in the order they were added."""
    return store.select(
        ITEM,
        "json_extract(body, '$.subscription') = ?",
        (subscription_id,),
        order="created ASC, seq ASC",
    )


def snapshot(store: Store, subscription: dict[str, Any]) -> dict[str, Any]:
    """Return the subscription as the API shows it now, to diff against after a change."""
    return render(store, copy.deepcopy(subscription))


def due_at(ctx: Ctx, sub: dict[str, Any]) -> int | None:
    """Return the next time the engine has work on this subscription (None: nothing scheduled)."""
    status = sub["status"]
    if status in ENDED:
        return None
    if status == "incomplete":
        return incomplete_expires_at(sub["created"])
    candidates: list[int] = []
    if status == "trialing" and sub.get("trial_end"):
        if not sub.get("_trial_will_end_sent"):
            candidates.append(sub["trial_end"] - TRIAL_WILL_END_NOTICE)
        candidates.append(sub["trial_end"])
    else:
        end = sub["_period_end"]
        if sub.get("cancel_at"):
            candidates.append(sub["cancel_at"])
        notice_at = end - upcoming_notice(ctx)
        renews = not sub.get("cancel_at")
        if renews and sub.get("_upcoming_sent_for") != end and notice_at > sub["_period_start"]:
            candidates.append(notice_at)
        candidates.append(end)
    return min(candidates)


def save_subscription(ctx: Ctx, sub: dict[str, Any]) -> dict[str, Any]:
    """Store a subscription with its engine due time refreshed."""
    sub["_due_at"] = due_at(ctx, sub)
    ctx.store.save(sub)
    return sub


def emit_changes(ctx: Ctx, sub: dict[str, Any], before: dict[str, Any]) -> dict[str, Any] | None:
    """Save and emit customer.subscription.updated with previous_attributes, if anything changed."""
    save_subscription(ctx, sub)
    previous = diff(before, render(ctx.store, copy.deepcopy(sub)))
    if not previous:
        return None
    return ctx.emit("customer.subscription.updated", sub, previous=previous)


def set_period(ctx: Ctx, sub: dict[str, Any], start: int, end: int) -> None:
    """Move the subscription and each of its items to the billing period [start, end)."""
    sub["_period_start"], sub["_period_end"] = start, end
    for item in items_of(ctx.store, sub["id"]):
        item["current_period_start"], item["current_period_end"] = start, end
        ctx.store.save(item)


def transition(
    ctx: Ctx,
    sub: dict[str, Any],
    status: str,
    at: int,
    *,
    before: dict[str, Any] | None = None,
    reason: str | None = None,
) -> None:
    """Move a subscription to a new status and emit the event Stripe sends for it.

    ``before`` is a snapshot taken before other changes of the same step (a renewal moves the
    period and the status in one customer.subscription.updated).  Cancellation emits
    customer.subscription.deleted instead.
    """
    current = sub["status"]
    if status != current and status not in ALLOWED.get(current, set()):
        raise ValueError(f"subscription cannot go from {current} to {status}")
    before = before if before is not None else snapshot(ctx.store, sub)
    sub["status"] = status
    if status == "canceled":
        sub["ended_at"] = at
        sub["canceled_at"] = sub.get("canceled_at") or at
        if reason:
            sub["cancellation_details"] = {
                **(sub.get("cancellation_details") or {}),
                "reason": reason,
            }
        stop_collection(ctx, sub)
        save_subscription(ctx, sub)
        ctx.emit("customer.subscription.deleted", sub)
        return
    if status == "incomplete_expired":
        sub["ended_at"] = at
    emit_changes(ctx, sub, before)


def stop_collection(ctx: Ctx, sub: dict[str, Any]) -> None:
    """Stop automatic collection of the subscription's open invoices, as Stripe does on cancel."""
    for invoice in ctx.store.select(
        "invoice",
        "json_extract(body, '$.subscription') = ? AND json_extract(body, '$.status') = ?",
        (sub["id"], "open"),
    ):
        invoice["auto_advance"] = False
        invoice["next_payment_attempt"] = None
        save_invoice(ctx, invoice)


def _billing_mode(p: dict[str, Any]) -> dict[str, Any]:
    # Since API 2025-09-30 new subscriptions default to flexible billing mode.
    kind = (p.get("billing_mode") or {}).get("type") or "flexible"
    flexible = {"proration_discounts": "included"} if kind == "flexible" else None
    return {"type": kind, "flexible": flexible}


def new_body(
    ctx: Ctx,
    customer: dict[str, Any],
    p: dict[str, Any],
    currency: str,
    at: int,
    trial_end: int | None,
) -> dict[str, Any]:
    """Return the fields of a new subscription from its create parameters."""
    collection_method = p.get("collection_method") or "charge_automatically"
    if collection_method == "send_invoice" and p.get("days_until_due") is None:
        raise invalid("Missing required param: days_until_due.", "days_until_due")
    body = {
        "application": None,
        "application_fee_percent": None,
        "automatic_tax": {"enabled": False, "liability": None, "disabled_reason": None},
        "billing_cycle_anchor": trial_end or at,
        "billing_cycle_anchor_config": None,
        "billing_mode": _billing_mode(p),
        "billing_schedules": [],
        "billing_thresholds": None,
        "cancel_at": None,
        "cancel_at_period_end": False,
        "canceled_at": None,
        "cancellation_details": {"comment": None, "feedback": None, "reason": None},
        "collection_method": collection_method,
        "currency": currency,
        "customer": customer["id"],
        "customer_account": None,
        "days_until_due": p.get("days_until_due"),
        "default_payment_method": p.get("default_payment_method"),
        "default_source": None,
        "default_tax_rates": catalog.tax_rate_objects(
            ctx, p.get("default_tax_rates"), "default_tax_rates"
        ),
        "description": p.get("description"),
        "discounts": [],
        "ended_at": None,
        "invoice_settings": {"account_tax_ids": None, "issuer": {"type": "self"}},
        "items": None,
        "latest_invoice": None,
        "managed_payments": None,
        "metadata": {},
        "next_pending_invoice_item_invoice": None,
        "on_behalf_of": None,
        "pause_collection": None,
        "payment_settings": {
            "payment_method_options": None,
            "payment_method_types": None,
            "save_default_payment_method": "off",
        },
        "pending_invoice_item_interval": None,
        "pending_setup_intent": None,
        "pending_update": None,
        "schedule": None,
        "start_date": at,
        "status": "trialing"
        if trial_end
        else ("active" if collection_method == "send_invoice" else "incomplete"),
        "test_clock": customer.get("test_clock"),
        "transfer_data": None,
        "trial_end": trial_end,
        "trial_settings": {"end_behavior": {"missing_payment_method": "create_invoice"}},
        "trial_start": at if trial_end else None,
    }
    apply_metadata(body, p)
    return body
