"""Invoice totals: discounts, then tax rates, applied line by line.

Rules (Stripe's, where it documents them; the sandbox's where it does not):
- subtotal is the sum of line amounts before discounts and exclusive tax.
- Discounts apply in order to discountable lines with a positive amount.  percent_off takes
  round_half_up(remaining * percent / 100) from each line; amount_off takes its amount from the
  invoice (capped at what is left) and spreads it over the lines in proportion to their
  remaining amounts, the rounding remainder going to the largest shares first, so the line
  shares always add up to the coupon amount exactly.
- Tax is computed per line and per rate on the line amount after its discounts.  Exclusive
  rates add round_half_up(net * p / 100) on top; inclusive rates carve
  round_half_up(gross * p / (100 + sum of inclusive p)) out of the amount.
- Billing credits (docs.stripe.com/billing/subscriptions/usage-based/billing-credits) are
  pretax credits: a line's credited amount comes off after its discounts and before its tax.
- total = subtotal - discounts - credits + exclusive tax; total_excluding_tax = total minus
  all tax.
- A coupon's duration decides which invoices it reaches: once (the first invoice only),
  repeating (invoices whose period starts before start + duration_in_months), forever.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Any

from .money import round_half_up
from .periods import add_months


@dataclass
class LineInput:
    """A line as totals see it: its amount, whether it takes discounts, and its tax rates."""

    amount: int
    discountable: bool = True
    tax_rates: Sequence[Mapping[str, Any]] = ()
    credits: int = 0


@dataclass(frozen=True)
class DiscountInput:
    """A discount object's id and its coupon (percent_off or amount_off)."""

    id: str
    coupon: Mapping[str, Any]


@dataclass
class LineTotals:
    """Per-line results: discount_amounts and taxes in the API's shapes."""

    discount_amounts: list[dict[str, Any]] = field(default_factory=list)
    taxes: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class InvoiceTotals:
    """Invoice-level figures in minor units plus per-line detail."""

    subtotal: int
    subtotal_excluding_tax: int
    total_discount_amounts: list[dict[str, Any]]
    total_taxes: list[dict[str, Any]]
    total_excluding_tax: int
    total: int
    lines: list[LineTotals]


def _percent(rate: Mapping[str, Any], key: str) -> Fraction:
    return Fraction(Decimal(str(rate[key])))


def _allocate(amount: int, weights: Sequence[int]) -> list[int]:
    """Split amount over weights exactly: floor shares, remainder to the largest fractions first."""
    total = sum(weights)
    if total <= 0 or amount <= 0:
        return [0] * len(weights)
    shares = [Fraction(amount * w, total) for w in weights]
    floors = [s.numerator // s.denominator for s in shares]
    left = amount - sum(floors)
    order = sorted(range(len(weights)), key=lambda i: (-(shares[i] - floors[i]), i))
    for i in order[:left]:
        floors[i] += 1
    return floors


def _discount_shares(coupon: Mapping[str, Any], remaining: Sequence[int]) -> list[int]:
    if coupon.get("percent_off") is not None:
        pct = _percent(coupon, "percent_off")
        return [round_half_up(r * pct / 100) if r > 0 else 0 for r in remaining]
    amount_off = int(coupon.get("amount_off") or 0)
    return _allocate(
        min(amount_off, sum(r for r in remaining if r > 0)), [max(r, 0) for r in remaining]
    )


def _line_taxes(net: int, rates: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    inclusive = [r for r in rates if r.get("inclusive")]
    exclusive = [r for r in rates if not r.get("inclusive")]
    inclusive_pct = sum((_percent(r, "percentage") for r in inclusive), Fraction(0))
    carved = [
        round_half_up(net * _percent(r, "percentage") / (100 + inclusive_pct)) for r in inclusive
    ]
    base = net - sum(carved)
    taxes = [
        _tax_entry(r, amount, base, "inclusive")
        for r, amount in zip(inclusive, carved, strict=True)
    ]
    for rate in exclusive:
        amount = round_half_up(base * _percent(rate, "percentage") / 100)
        taxes.append(_tax_entry(rate, amount, base, "exclusive"))
    return taxes


def _tax_entry(rate: Mapping[str, Any], amount: int, taxable: int, behavior: str) -> dict[str, Any]:
    return {
        "amount": amount,
        "tax_behavior": behavior,
        "tax_rate_details": {"tax_rate": rate["id"]},
        "taxability_reason": "standard_rated",
        "taxable_amount": taxable,
        "type": "tax_rate_details",
    }


def compute_totals(
    lines: Sequence[LineInput], discounts: Sequence[DiscountInput] = ()
) -> InvoiceTotals:
    """Apply discounts then tax rates to lines and return the invoice's totals."""
    results = [LineTotals() for _ in lines]
    remaining = [ln.amount if ln.discountable else 0 for ln in lines]
    discount_totals: dict[str, int] = {}
    for discount in discounts:
        shares = _discount_shares(discount.coupon, remaining)
        for i, share in enumerate(shares):
            if share:
                results[i].discount_amounts.append({"amount": share, "discount": discount.id})
                remaining[i] -= share
        discount_totals[discount.id] = discount_totals.get(discount.id, 0) + sum(shares)

    tax_totals: dict[tuple[str, str], dict[str, Any]] = {}
    inclusive_before_discount = 0
    for line, result in zip(lines, results, strict=True):
        discounted = sum(d["amount"] for d in result.discount_amounts) + line.credits
        result.taxes = _line_taxes(line.amount - discounted, line.tax_rates)
        inclusive_before_discount += sum(
            t["amount"]
            for t in _line_taxes(line.amount, line.tax_rates)
            if t["tax_behavior"] == "inclusive"
        )
        for tax in result.taxes:
            key = (tax["tax_rate_details"]["tax_rate"], tax["tax_behavior"])
            entry = tax_totals.setdefault(key, {**tax, "amount": 0, "taxable_amount": 0})
            entry["amount"] += tax["amount"]
            entry["taxable_amount"] += tax["taxable_amount"]

    subtotal = sum(ln.amount for ln in lines)
    total_discount = sum(discount_totals.values())
    exclusive_tax = sum(
        t["amount"] for t in tax_totals.values() if t["tax_behavior"] == "exclusive"
    )
    inclusive_tax = sum(
        t["amount"] for t in tax_totals.values() if t["tax_behavior"] == "inclusive"
    )
    total = subtotal - total_discount - sum(ln.credits for ln in lines) + exclusive_tax
    return InvoiceTotals(
        subtotal=subtotal,
        subtotal_excluding_tax=subtotal - inclusive_before_discount,
        total_discount_amounts=[{"amount": a, "discount": d} for d, a in discount_totals.items()],
        total_taxes=list(tax_totals.values()),
        total_excluding_tax=total - exclusive_tax - inclusive_tax,
        total=total,
        lines=results,
    )


def discount_end(coupon: Mapping[str, Any], start: int) -> int | None:
    """Return when a discount started at start stops applying (None: no fixed end)."""
    if coupon.get("duration") == "repeating":
        return add_months(start, int(coupon.get("duration_in_months") or 0))
    return None


def discount_applies(
    coupon: Mapping[str, Any], end: int | None, period_start: int, times_applied: int
) -> bool:
    """Return whether a discount reaches an invoice for a period starting at period_start."""
    duration = coupon.get("duration", "once")
    if duration == "once":
        return times_applied == 0
    if duration == "repeating":
        return end is None or period_start < end
    return True
