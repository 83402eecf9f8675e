"""Everything staff see on one account's page, read from the mirror and the audit log."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from portal.extensions import db
from portal.models import Account, AuditEntry, Price, Subscription, TaxId, WebhookEvent
from portal.services.account_directory import account_mrr
from portal.services.audit_log import AuditFilter, audit_page

RECENT_EVENTS = 50
RECENT_AUDIT = 50


@dataclass
class HistoryItem:
    """One change of an account's subscriptions, from the mirror or the audit log."""

    at: datetime
    what: str
    source: str  # "stripe" (the mirror) or "portal" (the audit log)
    detail: str = ""


@dataclass
class AccountOverview:
    """An account's subscriptions and their history, billing details, events and audit."""

    account: Account
    subscriptions: list[tuple[Subscription, Price | None]] = field(default_factory=list)
    history: list[HistoryItem] = field(default_factory=list)
    tax_ids: list[TaxId] = field(default_factory=list)
    events: list[WebhookEvent] = field(default_factory=list)
    audit: list[AuditEntry] = field(default_factory=list)
    more_audit: bool = False
    mrr: int = 0
    mrr_currency: str | None = None


def _mirror_history(subscription: Subscription, price: Price | None) -> list[HistoryItem]:
    """Return the dated facts the mirror keeps of a subscription."""
    plan = price.lookup_key if price and price.lookup_key else subscription.stripe_price_id
    sid = subscription.stripe_subscription_id
    items = []
    if subscription.stripe_created:
        items.append(HistoryItem(subscription.stripe_created, "started", "stripe",
                                 f"{sid} on {plan}"))
    if subscription.canceled_at:
        reason = ", ".join(part for part in (subscription.cancellation_feedback,
                                             subscription.cancellation_comment) if part)
        items.append(HistoryItem(subscription.canceled_at, "canceled", "stripe",
                                 f"{sid}" + (f": {reason}" if reason else "")))
    if subscription.ended_at:
        items.append(HistoryItem(subscription.ended_at, "ended", "stripe", sid))
    return items


def _audit_history(entry: AuditEntry) -> HistoryItem:
    """Return what a subscription audit entry says, in a line."""
    details = entry.details or {}
    if entry.action == "subscription.plan_changed":
        text = f"{details.get('from')} → {details.get('to')}"
    elif entry.action == "subscription.cancel_requested":
        text = ", ".join(str(part) for part in (details.get("feedback"),
                                                details.get("comment")) if part)
    else:
        text = entry.target_id
    return HistoryItem(entry.created_at, entry.action.removeprefix("subscription."), "portal",
                       text)


def account_overview(account: Account) -> AccountOverview:
    """Return what the staff page of an account shows (no Stripe call)."""
    overview = AccountOverview(account)
    overview.subscriptions = [(row[0], row[1]) for row in db.session.execute(
        db.select(Subscription, Price)
        .outerjoin(Price, Price.stripe_price_id == Subscription.stripe_price_id)
        .where(Subscription.account_id == account.id)
        .order_by(Subscription.id.desc()))]
    history = [item for subscription, price in overview.subscriptions
               for item in _mirror_history(subscription, price)]
    changes = audit_page(AuditFilter(account_id=account.id, action="subscription"),
                         per_page=100).entries
    history += [_audit_history(entry) for entry in changes]
    overview.history = sorted(history, key=lambda item: item.at, reverse=True)
    overview.tax_ids = list(db.session.scalars(
        db.select(TaxId).where(TaxId.account_id == account.id).order_by(TaxId.id)))
    if account.stripe_customer_id:
        overview.events = list(db.session.scalars(
            db.select(WebhookEvent)
            .where(WebhookEvent.stripe_customer_id == account.stripe_customer_id)
            .order_by(WebhookEvent.stripe_created.desc(), WebhookEvent.id.desc())
            .limit(RECENT_EVENTS)))
    audit = audit_page(AuditFilter(account_id=account.id), per_page=RECENT_AUDIT)
    overview.audit, overview.more_audit = audit.entries, audit.next_before is not None
    overview.mrr, overview.mrr_currency = account_mrr(account.id)
    return overview
