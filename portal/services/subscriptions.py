"""Changing, cancelling and resuming subscriptions, with proration previews."""
from __future__ import annotations

import time
from dataclasses import dataclass

from portal.extensions import db
from portal.models import Account, Price, Subscription, User
from portal.services import sync
from portal.services.audit import record_audit
from portal.services.checkout import live_subscription
from portal.services.refusals import BillingRefused
from portal.services.stripe_client import as_dict, request_id, stripe_client

CANCELLATION_FEEDBACK = (
    ("too_expensive", "It is too expensive"),
    ("missing_features", "Features are missing"),
    ("switched_service", "I switched to another service"),
    ("unused", "I don't use it enough"),
    ("customer_service", "Customer service was not good enough"),
    ("too_complex", "It is too complicated"),
    ("low_quality", "Quality was not good enough"),
    ("other", "Another reason"),
)


class SubscriptionChangeRefused(BillingRefused):
    """Raised when a requested subscription change is not possible."""


@dataclass
class ProrationPreview:
    """What a plan change will bill now: the proration lines and their total."""

    price: Price
    proration_date: int
    currency: str
    lines: list[dict]
    amount_due: int
    total: int


def price_by_lookup_key(lookup_key: str) -> Price:
    """Return the active, Stripe-linked licensed price for a lookup_key."""
    price = db.session.scalar(db.select(Price).where(
        Price.lookup_key == lookup_key, Price.active, Price.usage_type == "licensed"))
    if price is None or price.stripe_price_id is None or price.product.contact_sales:
        raise SubscriptionChangeRefused("That plan is not available.")
    return price


def changeable_subscription(account: Account) -> Subscription:
    """Return the live subscription a plan change applies to."""
    subscription = live_subscription(account)
    if subscription is None or subscription.stripe_item_id is None:
        raise SubscriptionChangeRefused("You have no subscription to change.")
    return subscription


def _change_params(subscription: Subscription, price: Price, proration_date: int) -> dict:
    """Return the item swap shared by the preview and the change itself."""
    return {
        "items": [{"id": subscription.stripe_item_id, "price": price.stripe_price_id}],
        "proration_behavior": "always_invoice",
        "proration_date": proration_date,
    }


def proration_preview(account: Account, lookup_key: str) -> ProrationPreview:
    """Ask Stripe what switching to `lookup_key` bills now, fixing the proration time."""
    subscription = changeable_subscription(account)
    price = price_by_lookup_key(lookup_key)
    if price.stripe_price_id == subscription.stripe_price_id:
        raise SubscriptionChangeRefused("You are already on that plan.")
    proration_date = int(time.time())
    change = _change_params(subscription, price, proration_date)
    preview = as_dict(stripe_client().v1.invoices.create_preview(params={
        "customer": subscription.stripe_customer_id,
        "subscription": subscription.stripe_subscription_id,
        "subscription_details": {
            "items": change["items"],
            "proration_behavior": change["proration_behavior"],
            "proration_date": proration_date,
        },
    }))
    return ProrationPreview(
        price=price,
        proration_date=proration_date,
        currency=preview["currency"],
        lines=sync.invoice_lines(preview),
        amount_due=preview["amount_due"],
        total=preview["total"],
    )


def change_plan(account: Account, lookup_key: str, proration_date: int, *,
                actor: User | None = None, ip: str | None = None) -> Subscription:
    """Switch the subscription's price with the previewed proration_date; bill it now."""
    subscription = changeable_subscription(account)
    price = price_by_lookup_key(lookup_key)
    previous_price_id = subscription.stripe_price_id
    now = int(time.time())
    # Stripe accepts a proration_date within the current period; a stale preview is refused.
    if not now - 3600 <= proration_date <= now:
        raise SubscriptionChangeRefused("That preview has expired: please review the change again.")
    updated = stripe_client().v1.subscriptions.update(
        subscription.stripe_subscription_id,
        params={**_change_params(subscription, price, proration_date),
                "expand": ["latest_invoice"]},
        options={"idempotency_key":
                 f"sub-{subscription.stripe_subscription_id}-to-{price.stripe_price_id}"
                 f"-at-{proration_date}"},
    )
    row = sync.subscription(updated)
    latest = as_dict(updated).get("latest_invoice")
    if isinstance(latest, dict):
        sync.invoice(latest)
    previous = db.session.scalar(db.select(Price).where(Price.stripe_price_id == previous_price_id))
    billed = latest if isinstance(latest, dict) else {}
    record_audit(
        actor, "subscription.plan_changed", "subscription", row.stripe_subscription_id,
        amount=billed.get("amount_due", 0), currency=billed.get("currency") or price.currency,
        stripe_request_id=request_id(updated), ip=ip,
        details={"account_id": account.id, "invoice": billed.get("id"),
                 "from": previous.lookup_key if previous else previous_price_id,
                 "from_amount": previous.unit_amount if previous else None,
                 "to": price.lookup_key, "to_amount": price.unit_amount,
                 "proration_date": proration_date},
    )
    db.session.commit()
    return row


def cancel_at_period_end(account: Account, feedback: str | None, comment: str | None, *,
                         actor: User | None = None, ip: str | None = None) -> Subscription:
    """Stop the subscription from renewing, keeping the customer's reason."""
    subscription = changeable_subscription(account)
    details: dict = {}
    if feedback:
        details["feedback"] = feedback
    if comment:
        details["comment"] = comment[:500]
    params: dict = {"cancel_at_period_end": True}
    if details:
        params["cancellation_details"] = details
    updated = stripe_client().v1.subscriptions.update(
        subscription.stripe_subscription_id, params=params
    )
    row = sync.subscription(updated)
    record_audit(actor, "subscription.cancel_requested", "subscription",
                 row.stripe_subscription_id, stripe_request_id=request_id(updated), ip=ip,
                 details={"account_id": account.id, "feedback": feedback,
                          "comment": details.get("comment"),
                          "ends_at": row.current_period_end.isoformat()
                          if row.current_period_end else None})
    db.session.commit()
    return row


def resume(account: Account, *, actor: User | None = None, ip: str | None = None
           ) -> Subscription:
    """Undo a cancellation at period end before the period is over."""
    subscription = changeable_subscription(account)
    if not subscription.cancel_at_period_end:
        raise SubscriptionChangeRefused("Your subscription is not set to end.")
    updated = stripe_client().v1.subscriptions.update(
        subscription.stripe_subscription_id,
        params={"cancel_at_period_end": False, "cancellation_details": {"feedback": "",
                                                                         "comment": ""}},
    )
    row = sync.subscription(updated)
    record_audit(actor, "subscription.resumed", "subscription", row.stripe_subscription_id,
                 stripe_request_id=request_id(updated), ip=ip,
                 details={"account_id": account.id})
    db.session.commit()
    return row


@dataclass
class SubscriptionSummary:
    """What the billing overview shows about a subscription, all from the mirror."""

    subscription: Subscription
    price: Price | None
    plan_name: str
    next_invoice_amount: int | None
    next_invoice_at: object | None


def summarize(subscription: Subscription | None) -> SubscriptionSummary | None:
    """Return the plan, next invoice amount and date of a subscription (no Stripe call)."""
    if subscription is None:
        return None
    price = db.session.scalar(
        db.select(Price).where(Price.stripe_price_id == subscription.stripe_price_id))
    renews = not subscription.cancel_at_period_end and subscription.status in (
        "active", "trialing", "past_due")
    amount = price.unit_amount * subscription.quantity if price and renews else None
    when = subscription.current_period_end if renews else None
    if subscription.status == "trialing" and subscription.trial_end:
        when = subscription.trial_end
    return SubscriptionSummary(
        subscription=subscription,
        price=price,
        plan_name=price.product.name if price else "Unknown plan",
        next_invoice_amount=amount,
        next_invoice_at=when,
    )
