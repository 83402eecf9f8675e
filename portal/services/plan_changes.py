"""Changing plan: Stripe's preview of the change, then the change itself, paid before it applies.

The preview is Stripe's own `invoices.create_preview` of the very update the customer then
confirms (same items, proration behaviour and proration_date), so what the page shows is what
Stripe bills: amount due after the credit balance, coupons and tax, and the renewal after it.
A change that charges now uses pending updates (`payment_behavior=pending_if_incomplete`): the
plan changes only once its invoice is paid; a payment that needs 3-D Secure is handed to the
browser; a declined one leaves the old plan and voids the change's invoice.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from portal.extensions import db
from portal.models import Account, Price, Subscription, User
from portal.services import sync
from portal.services.audit import record_audit
from portal.services.invoices import account_invoice, latest_payment_intent
from portal.services.metered_items import plan_change_items
from portal.services.stripe_client import CardError, as_dict, request_id, stripe_client
from portal.services.subscriptions import (
    SubscriptionChangeRefused,
    changeable_subscription,
    price_by_lookup_key,
)

# Stripe accepts a proration_date inside the current period; an hour-old preview is stale.
PREVIEW_LIFETIME = 3600


@dataclass
class ProrationPreview:
    """What a plan change bills now and at renewal, exactly as Stripe previewed it."""

    price: Price
    proration_date: int
    currency: str
    trialing: bool
    lines: list[dict] = field(default_factory=list)
    subtotal: int = 0
    discount: int = 0
    tax: int = 0
    total: int = 0
    amount_due: int = 0
    starting_balance: int = 0
    period_end: datetime | None = None
    renewal_total: int = 0
    renewal_at: datetime | None = None

    @property
    def credit_used(self) -> int:
        """Return how much of the customer's credit balance pays this invoice."""
        return max(0, self.total - self.amount_due) if self.total > 0 else 0

    @property
    def credit_added(self) -> int:
        """Return the credit a negative invoice adds to the customer's balance."""
        return -self.total if self.total < 0 else 0

    @property
    def nothing_due(self) -> bool:
        """Return True when confirming charges nothing today."""
        return self.amount_due == 0


@dataclass
class ChangeOutcome:
    """How a confirmed change went: applied, waiting for 3-D Secure, or refused by the bank."""

    subscription: Subscription
    applied: bool
    invoice_id: str | None = None
    client_secret: str | None = None
    message: str | None = None


def plan_changeable(account: Account) -> Subscription:
    """Return the subscription a plan change applies to: active or trialing, nothing unpaid."""
    subscription = changeable_subscription(account)
    if subscription.status not in ("active", "trialing"):
        raise SubscriptionChangeRefused(
            "Your subscription has an unpaid invoice: pay it before changing plan.")
    return subscription


def _change_params(subscription: Subscription, price: Price, proration_date: int) -> dict:
    """Return the item swap shared by the previews and the change itself."""
    return {
        "items": plan_change_items(subscription, price),
        "proration_behavior": "always_invoice",
        "proration_date": proration_date,
    }


def _preview(subscription: Subscription, change: dict, mode: str) -> dict:
    """Ask Stripe for the invoice the change bills now (`next`) or at renewal (`recurring`)."""
    return as_dict(stripe_client().v1.invoices.create_preview(params={
        "customer": subscription.stripe_customer_id,
        "subscription": subscription.stripe_subscription_id,
        "preview_mode": mode,
        "subscription_details": change,
    }))


def _utc(timestamp: int | None) -> datetime | None:
    """Return an aware UTC datetime for a unix timestamp."""
    return datetime.fromtimestamp(timestamp, UTC) if timestamp else None


def _sum(entries: list[dict] | None) -> int:
    """Return the sum of the `amount` of Stripe's total_* lists."""
    return sum(entry.get("amount", 0) for entry in entries or [])


def _renewal_start(recurring: dict) -> int | None:
    """Return when the recurring invoice's period begins: the current period's end."""
    starts = [line["period"]["start"] for line in (recurring.get("lines") or {}).get("data") or []
              if line.get("period")]
    return min(starts) if starts else recurring.get("period_end")


def proration_preview(account: Account, lookup_key: str) -> ProrationPreview:
    """Ask Stripe what switching to `lookup_key` bills now and at renewal."""
    subscription = plan_changeable(account)
    price = price_by_lookup_key(lookup_key)
    if price.stripe_price_id == subscription.stripe_price_id:
        raise SubscriptionChangeRefused("You are already on that plan.")
    proration_date = int(time.time())
    change = _change_params(subscription, price, proration_date)
    trialing = subscription.status == "trialing"
    recurring = _preview(subscription, change, "recurring")
    renewal_at = _renewal_start(recurring)
    preview = ProrationPreview(
        price=price, proration_date=proration_date, currency=recurring["currency"],
        trialing=trialing, renewal_total=recurring["total"],
        renewal_at=_utc(renewal_at), period_end=_utc(renewal_at),
        starting_balance=recurring.get("starting_balance") or 0,
    )
    if trialing:
        # Stripe makes no prorations while trialing: the new price is first billed at trial end.
        return preview
    now = _preview(subscription, change, "next")
    preview.lines = [{**line, "period_start": _utc(line["period_start"]),
                      "period_end": _utc(line["period_end"])} for line in sync.invoice_lines(now)]
    preview.subtotal = now["subtotal"]
    preview.discount = _sum(now.get("total_discount_amounts"))
    preview.tax = _sum(now.get("total_taxes"))
    preview.total = now["total"]
    preview.amount_due = now["amount_due"]
    preview.starting_balance = now.get("starting_balance") or 0
    return preview


def change_plan(account: Account, lookup_key: str, proration_date: int, *,
                actor: User | None = None, ip: str | None = None) -> ChangeOutcome:
    """Switch to `lookup_key` as previewed; the change applies only once its invoice is paid."""
    subscription = plan_changeable(account)
    price = price_by_lookup_key(lookup_key)
    now = int(time.time())
    if not now - PREVIEW_LIFETIME <= proration_date <= now:
        raise SubscriptionChangeRefused("That preview has expired: please review the change again.")
    if price.stripe_price_id == subscription.stripe_price_id:
        return ChangeOutcome(subscription=subscription, applied=True)
    previous_price_id = subscription.stripe_price_id
    client = stripe_client()
    try:
        response = client.v1.subscriptions.update(
            subscription.stripe_subscription_id,
            params={**_change_params(subscription, price, proration_date),
                    "payment_behavior": "pending_if_incomplete",
                    "expand": ["latest_invoice"]},
            # The same confirmation sent twice is one change and one charge.
            options={"idempotency_key":
                     f"sub-{subscription.stripe_subscription_id}-to-{price.stripe_price_id}"
                     f"-at-{proration_date}"},
        )
    except CardError as exc:
        raise SubscriptionChangeRefused(
            f"{exc.user_message or 'Your card was declined.'} Your plan was not changed.") from exc
    updated = as_dict(response)
    row = sync.subscription(updated)
    latest = updated.get("latest_invoice")
    invoice = sync.invoice(latest) if isinstance(latest, dict) else None
    _audit_change(account, row, price, previous_price_id, latest, actor, ip,
                  request_id(response), proration_date)
    db.session.commit()
    if not updated.get("pending_update"):
        return ChangeOutcome(subscription=row, applied=True,
                             invoice_id=invoice.stripe_invoice_id if invoice else None)
    intent = latest_payment_intent(client, invoice.stripe_invoice_id) if invoice else None
    if intent and intent.get("status") == "requires_action":
        return ChangeOutcome(subscription=row, applied=False, invoice_id=invoice.stripe_invoice_id,
                             client_secret=intent["client_secret"])
    error = (intent or {}).get("last_payment_error") or {}
    abandon_change(account, invoice.stripe_invoice_id)
    raise SubscriptionChangeRefused(
        f"{error.get('message') or 'The payment did not go through.'} Your plan was not changed.")


def _audit_change(account: Account, row: Subscription, price: Price, previous_price_id: str | None,
                  latest: object, actor: User | None, ip: str | None,
                  stripe_request_id: str | None, proration_date: int) -> None:
    """Record the change the customer confirmed, with what it billed, for disputes."""
    previous = db.session.scalar(db.select(Price).where(Price.stripe_price_id == previous_price_id))
    billed = latest if isinstance(latest, dict) else {}
    record_audit(
        actor, "subscription.plan_changed", "subscription", row.stripe_subscription_id,
        amount=billed.get("amount_due", 0), currency=billed.get("currency") or price.currency,
        stripe_request_id=stripe_request_id, ip=ip,
        details={"account_id": account.id, "invoice": billed.get("id"),
                 "from": previous.lookup_key if previous else previous_price_id,
                 "from_amount": previous.unit_amount if previous else None,
                 "to": price.lookup_key, "to_amount": price.unit_amount,
                 "proration_date": proration_date},
    )


def abandon_change(account: Account, stripe_invoice_id: str) -> None:
    """Void the unpaid invoice of a pending plan change, so the old plan stays with nothing due."""
    subscription = changeable_subscription(account)
    if subscription.latest_invoice_id != stripe_invoice_id:
        raise SubscriptionChangeRefused("That plan change is no longer waiting for payment.")
    client = stripe_client()
    invoice = as_dict(client.v1.invoices.retrieve(stripe_invoice_id))
    if invoice["status"] == "open":
        invoice = as_dict(client.v1.invoices.void_invoice(
            stripe_invoice_id, options={"idempotency_key": f"void-{stripe_invoice_id}"}))
    sync.invoice(invoice)
    sync.subscription(client.v1.subscriptions.retrieve(subscription.stripe_subscription_id))
    db.session.commit()


def change_settled(account: Account, stripe_invoice_id: str, lookup_key: str) -> str:
    """Return where a change paid in the browser stands in the mirror: paid, failed or waiting.

    Paid means both webhooks arrived: the invoice is paid and the subscription has the new price.
    """
    invoice = account_invoice(account, stripe_invoice_id)
    subscription = changeable_subscription(account)
    if invoice.status == "paid" and subscription.stripe_price_id == price_by_lookup_key(
            lookup_key).stripe_price_id:
        return "paid"
    if invoice.status in ("void", "uncollectible"):
        return "failed"
    return "waiting"
