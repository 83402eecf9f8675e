"""Subscription MRR as the sync path sees it change, classified by ChartMogul's movements.

MRR of a subscription: its licensed plan price times quantity, net of its coupons, without
tax, spread over the months of its billing interval (a yearly price counts a twelfth each
month). Metered usage is not recurring and is left out. Only `active` and `past_due`
subscriptions contribute: a trialing one contributes 0 until it converts, an ended, unpaid,
paused or incomplete one contributes 0.

Rounding (integer arithmetic throughout): the discounted amount per interval is an exact
fraction of minor units; the monthly figure is rounded once, half up, to a whole minor unit,
so 49,000 a year is 4,083 a month (4,083.33) and 19,000 a year is 1,583 (1,583.33).
Coupons: `percent_off` and `amount_off` (the latter only in the subscription's currency, per
billing interval) apply while the discount has not ended; a `once` coupon is a one-off price
cut of the first invoice, not recurring revenue, and is left out.

Movements are classified per customer and currency, after ChartMogul's definitions: the first
time a customer's MRR rises from 0 it is new business; from 0 again after a churn,
reactivation; a rise of a paying customer's MRR is expansion, a fall that leaves some MRR is
contraction, a fall to 0 is churn (recognised when Stripe ends the subscription).
"""
from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction

from portal.extensions import db
from portal.models import MrrChange, SubscriptionMrr
from portal.models.types import utcnow

PAYING_STATUSES = ("active", "past_due")
ENDED_STATUSES = ("canceled", "incomplete_expired")
# Months in one billing interval of each kind (weeks and days by the 365-day year).
MONTHS_PER_INTERVAL = {"month": Fraction(1), "year": Fraction(12),
                       "week": Fraction(12, 52), "day": Fraction(12, 365)}
# What a webhook handler expands to learn a subscription's coupon terms.
DISCOUNT_EXPAND = "discounts.source.coupon"


def round_half_up(value: Fraction) -> int:
    """Return a non-negative fraction of minor units rounded half up to a whole unit."""
    return (value.numerator * 2 + value.denominator) // (value.denominator * 2)


def monthly_amount(amount_per_interval: Fraction | int, interval: str,
                   interval_count: int = 1) -> int:
    """Return an amount billed every `interval_count` `interval`s as minor units per month."""
    months = MONTHS_PER_INTERVAL[interval] * max(interval_count, 1)
    return round_half_up(Fraction(amount_per_interval) / months)


class DiscountTerms:
    """The coupon terms of a subscription's discounts: ids, percent (basis points), amount, end."""

    def __init__(self, ids: str = "", percent_off_bp: int = 0, amount_off: int = 0,
                 end: datetime | None = None) -> None:
        self.ids, self.percent_off_bp, self.amount_off, self.end = (
            ids, percent_off_bp, amount_off, end)

    def active_at(self, at: datetime) -> bool:
        """Return True while the discount applies at `at`."""
        return self.end is None or self.end > at


def _discount_ids(data: dict) -> str:
    """Return the ids of a subscription's discounts, sorted and joined."""
    ids = [entry if isinstance(entry, str) else entry.get("id", "")
           for entry in data.get("discounts") or []]
    return ",".join(sorted(ids))


def _coupon_of(discount: dict) -> dict | None:
    """Return a discount's coupon object when it is expanded (any API version)."""
    coupon = (discount.get("source") or {}).get("coupon") or discount.get("coupon")
    return coupon if isinstance(coupon, dict) else None


def _terms_from(data: dict, currency: str) -> DiscountTerms | None:
    """Return the terms of expanded discounts, or None when a coupon is only an id."""
    percent_bp = amount = 0
    end = None
    for discount in data.get("discounts") or []:
        coupon = _coupon_of(discount) if isinstance(discount, dict) else None
        if coupon is None:
            return None
        if coupon.get("duration") == "once":
            continue
        if coupon.get("percent_off") is not None:
            percent_bp += int(Decimal(str(coupon["percent_off"])) * 100)
        elif coupon.get("amount_off") and coupon.get("currency") == currency:
            amount += int(coupon["amount_off"])
        if discount.get("end"):
            ends = datetime.fromtimestamp(discount["end"], UTC)
            end = ends if end is None else min(end, ends)
    return DiscountTerms(_discount_ids(data), min(percent_bp, 10000), amount, end)


def needs_discount_terms(data: dict) -> bool:
    """Return True when a subscription names discounts whose coupon terms are not yet known."""
    ids = _discount_ids(data)
    if not ids or _terms_from(data, data.get("currency") or "") is not None:
        return False
    known = db.session.scalar(db.select(SubscriptionMrr.discount_ids).where(
        SubscriptionMrr.stripe_subscription_id == data["id"]))
    return known != ids


def subscription_mrr(data: dict, terms: DiscountTerms, at: datetime) -> int:
    """Return what a Stripe subscription contributes to MRR at `at`, in minor units."""
    if data.get("status") not in PAYING_STATUSES:
        return 0
    items = (data.get("items") or {}).get("data") or []
    total = Fraction(0)
    for item in items:
        price = item.get("price") or {}
        recurring = price.get("recurring") or {}
        if recurring.get("usage_type", "licensed") != "licensed" or not recurring.get("interval"):
            continue
        per_interval = Fraction(int(price.get("unit_amount") or 0) * int(item.get("quantity") or 0))
        months = MONTHS_PER_INTERVAL[recurring["interval"]] * max(
            int(recurring.get("interval_count") or 1), 1)
        total += per_interval / months
        if terms.active_at(at) and terms.amount_off:
            total -= Fraction(terms.amount_off) / months
    if terms.active_at(at) and terms.percent_off_bp:
        total = total * (10000 - terms.percent_off_bp) / 10000
    return round_half_up(max(total, Fraction(0)))


def _change_time(data: dict, at: int | None) -> datetime:
    """Return Stripe's time of the change: when the subscription ended, else the event's time."""
    if data.get("status") in ENDED_STATUSES and (data.get("ended_at") or data.get("canceled_at")):
        return datetime.fromtimestamp(data.get("ended_at") or data["canceled_at"], UTC)
    return datetime.fromtimestamp(at, UTC) if at else utcnow()


def movement_kind(customer_before: int, customer_after: int, paid_before: bool) -> str:
    """Return ChartMogul's category for a customer's MRR going from `before` to `after`."""
    if customer_before == 0:
        return "reactivation" if paid_before else "new_business"
    if customer_after == 0:
        return "churn"
    return "expansion" if customer_after > customer_before else "contraction"


def track(row, data: dict, at: int | None) -> MrrChange | None:
    """Recompute a synced subscription's MRR and append a classified change when it moved.

    `row` is the subscription's mirror row just filled from `data`; `at` the Stripe time
    (unix) of the version applied. Returns the change written, if any.
    """
    state = db.session.scalar(db.select(SubscriptionMrr).where(
        SubscriptionMrr.stripe_subscription_id == row.stripe_subscription_id).with_for_update())
    currency = row.currency
    terms = _terms_from(data, currency)
    if terms is None:
        if state is None or state.discount_ids != _discount_ids(data):
            # Coupon terms unknown (a payload naming discounts by id): keep the last figure
            # until a webhook handler brings them, rather than write a wrong movement.
            return None
        terms = DiscountTerms(state.discount_ids, state.percent_off_bp, state.amount_off,
                              state.discount_end)
    when = _change_time(data, at)
    new = subscription_mrr(data, terms, when)
    old = state.mrr if state is not None else 0
    if state is None:
        state = SubscriptionMrr(stripe_subscription_id=row.stripe_subscription_id)
    customer_before = _customer_mrr(row.stripe_customer_id, currency)
    state.stripe_customer_id = row.stripe_customer_id
    state.account_id = row.account_id
    state.stripe_price_id = row.stripe_price_id
    state.currency = currency
    state.discount_ids, state.percent_off_bp = terms.ids, terms.percent_off_bp
    state.amount_off, state.discount_end = terms.amount_off, terms.end
    state.mrr = new
    state.updated_at = utcnow()
    db.session.add(state)
    if new == old:
        return None
    paid_before = customer_before == 0 and db.session.scalar(db.select(MrrChange.id).where(
        MrrChange.stripe_customer_id == row.stripe_customer_id,
        MrrChange.currency == currency).limit(1)) is not None
    change = MrrChange(
        account_id=row.account_id, stripe_customer_id=row.stripe_customer_id,
        stripe_subscription_id=row.stripe_subscription_id, stripe_price_id=row.stripe_price_id,
        currency=currency, at=when, old_mrr=old, new_mrr=new,
        kind=movement_kind(customer_before, customer_before - old + new, paid_before))
    db.session.add(change)
    return change


def _customer_mrr(customer_id: str, currency: str) -> int:
    """Return a customer's MRR in one currency, summed over its subscriptions."""
    return db.session.scalar(db.select(db.func.coalesce(db.func.sum(SubscriptionMrr.mrr), 0))
                             .where(SubscriptionMrr.stripe_customer_id == customer_id,
                                    SubscriptionMrr.currency == currency)) or 0
