"""Cancelling and resuming subscriptions, and the summary the billing overview shows."""
from __future__ import annotations

from dataclasses import dataclass

from portal.extensions import db
from portal.models import Account, Price, Subscription, User
from portal.models.subscription import LIVE_STATUSES
from portal.services import sync
from portal.services.audit import record_audit
from portal.services.catalog import plan_price
from portal.services.catalog_cache import cached_price
from portal.services.refusals import BillingRefused
from portal.services.stripe_client import request_id, stripe_client

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


# Built once: every customer page asks, and building a statement costs more than running it.
LIVE_SUBSCRIPTION = (
    db.select(Subscription)
    .where(Subscription.account_id == db.bindparam("account_id"),
           Subscription.status.in_(LIVE_STATUSES))
    .order_by(Subscription.stripe_created.desc())
    .limit(1)
)


def live_subscription(account: Account) -> Subscription | None:
    """Return the account's newest subscription that gives (or is about to give) service."""
    return db.session.scalar(LIVE_SUBSCRIPTION, {"account_id": account.id})


def had_subscription(account: Account) -> bool:
    """Return True when the account ever had a subscription (trials are for newcomers)."""
    query = db.select(Subscription.id).where(Subscription.account_id == account.id).limit(1)
    return db.session.scalar(query) is not None


def price_by_lookup_key(lookup_key: str) -> Price:
    """Return the price a plan change may switch to; refuse one that cannot be picked."""
    price = plan_price(lookup_key)
    if price is None:
        raise SubscriptionChangeRefused("That plan is not available.")
    return price


def changeable_subscription(account: Account) -> Subscription:
    """Return the live subscription a plan change applies to."""
    subscription = live_subscription(account)
    if subscription is None or subscription.stripe_item_id is None:
        raise SubscriptionChangeRefused("You have no subscription to change.")
    return subscription


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
    price = cached_price(subscription.stripe_price_id)
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
