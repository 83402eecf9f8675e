"""Stripe's documented billing rules as plain arithmetic, for the expected side of plan tests.

Nothing here reads the sandbox or the portal: each function is the rule of the docs page named
beside it, applied to the catalog's prices and the times a test chose. The plan-change table
test compares what the portal shows and what the sandbox bills with these numbers.
"""
from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction


def round_half_up(value: Fraction) -> int:
    """Round an exact amount to a whole minor unit, halves away from zero (Stripe's rounding)."""
    sign = -1 if value < 0 else 1
    quantized = Decimal(abs(value.numerator)) / Decimal(value.denominator)
    return sign * int(quantized.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def add_interval(anchor: int, interval: str, count: int = 1) -> int:
    """Return the period end `count` intervals after the anchor.

    docs.stripe.com/billing/subscriptions/billing-cycle: the anchor fixes the day of month
    (month and year intervals); a day the target month lacks becomes its last day.
    """
    start = datetime.fromtimestamp(anchor, UTC)
    months = count * (12 if interval == "year" else 1)
    index = start.year * 12 + start.month - 1 + months
    year, month = divmod(index, 12)
    day = min(start.day, calendar.monthrange(year, month + 1)[1])
    return int(start.replace(year=year, month=month + 1, day=day).timestamp())


def prorate(amount: int, start: int, end: int, at: int) -> int:
    """Return the share of a period's amount left after `at`, by the second.

    docs.stripe.com/billing/subscriptions/prorations: prorations are calculated to the second
    between the change and the period end, each line rounded to the minor unit.
    """
    return round_half_up(Fraction(amount) * Fraction(end - at, end - start))


def percent_of(amount: int, percent: int) -> int:
    """Return percent of an amount, rounded half away from zero."""
    return round_half_up(Fraction(amount * percent, 100))


@dataclass
class Line:
    """One expected invoice line: its amount before discount, discount taken and tax added."""

    amount: int
    discount: int = 0
    tax: int = 0

    @property
    def net(self) -> int:
        """Return what the line adds to the invoice total."""
        return self.amount - self.discount + self.tax


def charge_line(amount: int, coupon_percent: int, tax_percent: int) -> Line:
    """Return a debit line with the subscription's coupon and exclusive tax rate applied.

    docs.stripe.com/billing/subscriptions/coupons: a percent_off coupon takes its share of each
    discountable line; docs.stripe.com/billing/taxes/tax-rates: an exclusive rate is added on
    top of the amount after discounts.
    """
    discount = percent_of(amount, coupon_percent) if amount > 0 else 0
    return Line(amount, discount, percent_of(amount - discount, tax_percent))


def credit_line(billed_amount: int, start: int, end: int, at: int, tax_percent: int) -> Line:
    """Return the credit for unused time on what was billed for [start, end).

    docs.stripe.com/billing/subscriptions/billing-mode/compare: in flexible billing mode a
    credit proration is based on the amount previously debited (after its discounts), so the
    credit takes no discount of its own; its tax is the same exclusive rate, negative.
    """
    amount = -prorate(billed_amount, start, end, at)
    return Line(amount, 0, percent_of(amount, tax_percent))


@dataclass
class Expected:
    """What a plan change must show and bill, derived from the rules above."""

    lines: list[Line]
    starting_balance: int
    period_end: int
    renewal_total: int
    invoiced: bool = True
    notes: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        """Return the invoice total: the sum of its lines after discounts and tax."""
        return sum(line.net for line in self.lines)

    @property
    def amount_due(self) -> int:
        """Return what the card is charged.

        docs.stripe.com/billing/customer/balance: a credit balance applies to the next
        finalized invoice before the card is charged; a negative total is credited to it.
        """
        return max(0, self.total + self.starting_balance) if self.total > 0 else 0

    @property
    def ending_balance(self) -> int:
        """Return the customer balance left after this invoice."""
        if self.total <= 0:
            return self.starting_balance + self.total
        return min(0, self.starting_balance + self.total)

    @property
    def credit_used(self) -> int:
        """Return how much of the credit balance this invoice consumed."""
        return max(0, self.ending_balance - self.starting_balance)


def plan_change(*, old_amount: int, old_interval: str, new_amount: int, new_interval: str,
                period: tuple[int, int], at: int, now: int, coupon_percent: int = 0,
                tax_percent: int = 0, balance: int = 0) -> Expected:
    """Return the invoice a change of an active subscription's only price bills at once.

    docs.stripe.com/billing/subscriptions/change-price: a price with the same interval keeps
    the billing period and (proration_behavior=always_invoice) invoices the credit for unused
    time and the charge for the remaining time now; a price with a different interval resets
    the billing cycle anchor to the time of the change and invoices the new price for a full
    period at once, with the credit for unused time on the old price on that invoice.
    """
    start, end = period
    billed = old_amount - percent_of(old_amount, coupon_percent)
    credit = credit_line(billed, start, end, at, tax_percent)
    renewal = charge_line(new_amount, coupon_percent, tax_percent).net
    if new_interval == old_interval:
        debit = charge_line(prorate(new_amount, start, end, at), coupon_percent, tax_percent)
        return Expected([credit, debit], balance, end, renewal)
    full = charge_line(new_amount, coupon_percent, tax_percent)
    return Expected([credit, full], balance, add_interval(now, new_interval), renewal)


def trial_change(*, new_amount: int, trial_end: int, balance: int = 0) -> Expected:
    """Return what a price change during a trial bills: nothing now, the new price at trial end.

    docs.stripe.com/billing/subscriptions/trials: no prorations are created while a
    subscription is trialing; the first invoice comes when the trial ends, at the price the
    subscription then has.
    """
    return Expected([], balance, trial_end, new_amount, invoiced=False)
