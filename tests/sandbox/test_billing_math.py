"""Pure billing math of the sandbox: periods, pricing, proration, totals, dunning."""

from __future__ import annotations

from datetime import UTC, datetime
from fractions import Fraction

import pytest

from portal.sandbox.billing import dunning, money, periods, pricing, proration, totals


def ts(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp())


# -- periods -------------------------------------------------------------------------------


def test_monthly_anchor_on_31st_clamps_then_returns():
    anchor = ts(2026, 1, 31, 12, 30)
    got = [periods.boundary(anchor, "month", 1, n) for n in range(5)]
    assert got == [
        ts(2026, 1, 31, 12, 30),
        ts(2026, 2, 28, 12, 30),
        ts(2026, 3, 31, 12, 30),
        ts(2026, 4, 30, 12, 30),
        ts(2026, 5, 31, 12, 30),
    ]


def test_leap_year_february_and_yearly_feb_29():
    assert periods.boundary(ts(2028, 1, 31), "month", 1, 1) == ts(2028, 2, 29)
    anchor = ts(2028, 2, 29)
    assert periods.boundary(anchor, "year", 1, 1) == ts(2029, 2, 28)
    assert periods.boundary(anchor, "year", 1, 4) == ts(2032, 2, 29)


def test_week_day_and_interval_count():
    anchor = ts(2026, 6, 5)
    assert periods.boundary(anchor, "week", 2, 1) == ts(2026, 6, 19)
    assert periods.boundary(anchor, "day", 3, 2) == ts(2026, 6, 11)
    assert periods.boundary(ts(2026, 11, 30), "month", 3, 1) == ts(2027, 2, 28)


def test_period_containing_is_half_open():
    anchor = ts(2026, 1, 31)
    assert periods.period_containing(anchor, "month", 1, ts(2026, 3, 1)) == (
        ts(2026, 2, 28),
        ts(2026, 3, 31),
    )
    assert periods.period_containing(anchor, "month", 1, ts(2026, 3, 31)) == (
        ts(2026, 3, 31),
        ts(2026, 4, 30),
    )
    assert periods.period_containing(anchor, "month", 1, ts(2025, 12, 31)) == (
        ts(2025, 12, 31),
        ts(2026, 1, 31),
    )


def test_unknown_interval_is_refused():
    with pytest.raises(ValueError):
        periods.boundary(0, "fortnight", 1, 1)


# -- pricing -------------------------------------------------------------------------------

TIERS = [
    {"up_to": 5, "unit_amount": 500, "flat_amount": 100},
    {"up_to": 10, "unit_amount": 400, "flat_amount": None},
    {"up_to": "inf", "unit_amount": 300, "flat_amount": 50},
]


def test_per_unit_and_decimal_unit_amount():
    assert (
        pricing.amount_for_quantity({"billing_scheme": "per_unit", "unit_amount": 1999}, 3) == 5997
    )
    price = {"billing_scheme": "per_unit", "unit_amount": None, "unit_amount_decimal": "0.5"}
    assert pricing.amount_for_quantity(price, 3) == 2  # 1.5 rounds half away from zero
    assert pricing.unit_amount_decimal(price, 3) == "0.5"


def test_graduated_tiers():
    price = {"billing_scheme": "tiered", "tiers_mode": "graduated", "tiers": TIERS}
    # docs.stripe.com/subscriptions/pricing-models/tiered-pricing: the flat first tier is due.
    assert pricing.amount_for_quantity(price, 0) == 100
    assert pricing.amount_for_quantity(price, 5) == 5 * 500 + 100
    assert pricing.amount_for_quantity(price, 12) == 5 * 500 + 100 + 5 * 400 + 2 * 300 + 50


def test_volume_tiers():
    price = {"billing_scheme": "tiered", "tiers_mode": "volume", "tiers": TIERS}
    assert pricing.amount_for_quantity(price, 5) == 5 * 500 + 100
    assert pricing.amount_for_quantity(price, 6) == 6 * 400
    assert pricing.amount_for_quantity(price, 12) == 12 * 300 + 50


def test_transform_quantity_rounds_as_configured():
    price = {
        "billing_scheme": "per_unit",
        "unit_amount": 100,
        "transform_quantity": {"divide_by": 10, "round": "up"},
    }
    assert pricing.amount_for_quantity(price, 11) == 200
    price["transform_quantity"]["round"] = "down"
    assert pricing.amount_for_quantity(price, 19) == 100


# -- proration -----------------------------------------------------------------------------

MONTHLY_10 = {"id": "price_a", "unit_amount": 1000, "recurring": {"usage_type": "licensed"}}
MONTHLY_20 = {"id": "price_b", "unit_amount": 2000, "recurring": {"usage_type": "licensed"}}


def test_upgrade_half_way_matches_stripe_example():
    start, end = ts(2026, 4, 1), ts(2026, 5, 1)
    half = start + (end - start) // 2
    lines = proration.item_change_prorations(
        proration.ItemState(MONTHLY_10, 1, "Basic"),
        proration.ItemState(MONTHLY_20, 1, "Pro"),
        start,
        end,
        half,
    )
    assert [ln.amount for ln in lines] == [-500, 1000]
    assert lines[0].description == "Unused time on Basic after 16 Apr 2026"
    assert lines[1].description == "Remaining time on Pro after 16 Apr 2026"
    assert all((ln.period_start, ln.period_end) == (half, end) for ln in lines)


def test_proration_by_the_second_and_rounding():
    start, end = 0, 3
    assert proration.proration_factor(start, end, 1) == Fraction(2, 3)
    assert proration.prorated_amount(1000, start, end, 1) == 667
    assert proration.prorated_amount(1000, start, end, 2) == 333
    assert proration.prorated_amount(1, 0, 2, 1) == 1  # exactly half rounds up


def test_quantity_change_and_no_change():
    start, end = 0, 100
    old = proration.ItemState(MONTHLY_10, 1, "Seat")
    new = proration.ItemState(MONTHLY_10, 3, "Seat")
    lines = proration.item_change_prorations(old, new, start, end, 25)
    assert [ln.amount for ln in lines] == [-750, 2250]
    assert lines[1].description.startswith("Remaining time on 3 × Seat")
    assert proration.item_change_prorations(old, old, start, end, 25) == []


def test_metered_items_are_not_prorated():
    metered = {"id": "price_m", "unit_amount": 5, "recurring": {"usage_type": "metered"}}
    lines = proration.item_change_prorations(
        proration.ItemState(metered, 1, "API"),
        proration.ItemState(MONTHLY_10, 1, "Basic"),
        0,
        100,
        50,
    )
    assert [ln.amount for ln in lines] == [500]


# -- totals --------------------------------------------------------------------------------

VAT_EXCL = {"id": "txr_ex", "percentage": 19, "inclusive": False}
VAT_INCL = {"id": "txr_in", "percentage": "20", "inclusive": True}


def test_percent_coupon_then_exclusive_tax():
    result = totals.compute_totals(
        [totals.LineInput(1000, tax_rates=[VAT_EXCL]), totals.LineInput(500, tax_rates=[VAT_EXCL])],
        [totals.DiscountInput("di_1", {"percent_off": 25.5})],
    )
    # 25.5% of 1000 = 255, of 500 = 127.5 -> 128
    assert result.total_discount_amounts == [{"amount": 383, "discount": "di_1"}]
    assert [ln.taxes[0]["amount"] for ln in result.lines] == [142, 71]  # 19% of 745 and of 372
    assert result.subtotal == 1500
    assert result.total == 1500 - 383 + 213
    assert result.total_excluding_tax == 1500 - 383
    assert result.total_taxes[0]["taxable_amount"] == 1117


def test_amount_off_is_spread_exactly_and_capped():
    result = totals.compute_totals(
        [
            totals.LineInput(100),
            totals.LineInput(100),
            totals.LineInput(100),
            totals.LineInput(50, discountable=False),
        ],
        [totals.DiscountInput("di_2", {"amount_off": 100})],
    )
    shares = [sum(d["amount"] for d in ln.discount_amounts) for ln in result.lines]
    assert shares == [34, 33, 33, 0]
    assert result.total == 250
    capped = totals.compute_totals(
        [totals.LineInput(80)], [totals.DiscountInput("di_3", {"amount_off": 500})]
    )
    assert capped.total == 0


def test_inclusive_tax_is_carved_out():
    result = totals.compute_totals([totals.LineInput(1200, tax_rates=[VAT_INCL])])
    assert result.total == 1200
    assert result.total_taxes[0]["amount"] == 200
    assert result.total_taxes[0]["tax_behavior"] == "inclusive"
    assert result.total_excluding_tax == 1000
    assert result.subtotal_excluding_tax == 1000


def test_coupon_durations():
    start = ts(2026, 1, 15)
    coupon = {"duration": "repeating", "duration_in_months": 3}
    end = totals.discount_end(coupon, start)
    assert end == ts(2026, 4, 15)
    assert totals.discount_applies(coupon, end, ts(2026, 3, 15), 2)
    assert not totals.discount_applies(coupon, end, ts(2026, 4, 15), 3)
    assert totals.discount_applies({"duration": "once"}, None, start, 0)
    assert not totals.discount_applies({"duration": "once"}, None, start, 1)
    assert totals.discount_applies({"duration": "forever"}, None, ts(2030, 1, 1), 50)


# -- money and dunning ---------------------------------------------------------------------


def test_currency_exponents_and_formatting():
    assert money.format_amount(1500, "jpy") == "¥1,500"
    assert money.format_amount(1500, "kwd") == "KWD1.500"
    assert money.format_amount(1050, "usd") == "$10.50"
    assert money.round_half_up(Fraction(-5, 2)) == -3


def test_dunning_schedule_and_final_action():
    policy = dunning.DunningPolicy()
    first = ts(2026, 1, 1)
    got = [policy.next_attempt_at(first, n) for n in range(1, 6)]
    assert got == [ts(2026, 1, 2), ts(2026, 1, 4), ts(2026, 1, 6), ts(2026, 1, 8), None]
    assert policy.subscription_status_after_exhaustion() == "canceled"
    assert (
        dunning.DunningPolicy(final_action="unpaid").subscription_status_after_exhaustion()
        == "unpaid"
    )
    with pytest.raises(ValueError):
        dunning.DunningPolicy(final_action="delete")
    assert dunning.incomplete_expires_at(first) == first + 23 * 3600
