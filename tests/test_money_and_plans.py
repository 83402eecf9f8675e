"""Money formatting and the plan list."""
from __future__ import annotations

import re
from decimal import Decimal

import pytest

from portal.cli import prepare_database
from portal.services.catalog import load_catalog
from portal.services.money import format_money, minor_unit_exponent, to_major_units


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [(1900, "usd", "$19.00"), (500, "jpy", "¥500"), (1234, "kwd", "KWD1.234"),
     (0, "eur", "€0.00"), (123456789, "usd", "$1,234,567.89")],
)
def test_format_money(amount, currency, expected):
    assert format_money(amount, currency) == expected


def test_minor_units_follow_iso_4217():
    assert [minor_unit_exponent(code) for code in ("jpy", "usd", "kwd")] == [0, 2, 3]
    assert to_major_units(1005, "usd") == Decimal("10.05")


def test_floats_are_refused_as_money():
    with pytest.raises(TypeError):
        to_major_units(19.99, "usd")


def test_catalog_file_is_valid():
    catalog = load_catalog()
    keys = [plan["key"] for plan in catalog["plans"]]
    assert keys == ["free", "starter", "pro", "enterprise"]


def test_plans_page_lists_prices_and_switches_interval(client, make_user, login):
    prepare_database(seed_demo=False)
    login(make_user())
    page = client.get("/billing/plans").get_data(as_text=True)
    assert "$49.00" in page and "/ month" in page and "Let's talk" in page
    fragment = client.get("/billing/plans?interval=year", headers={"HX-Request": "true"})
    body = fragment.get_data(as_text=True)
    assert "$490.00" in body and "/ year" in body
    assert "<html" not in body
    assert client.get("/billing/plans?interval=decade").status_code == 200


def test_plans_page_shows_yearly_savings_from_the_catalog(client, make_user, login):
    prepare_database(seed_demo=False)
    login(make_user())
    catalog = load_catalog()
    yearly = client.get("/billing/plans?interval=year").get_data(as_text=True)
    monthly = client.get("/billing/plans").get_data(as_text=True)
    shown = 0
    for plan in catalog["plans"]:
        if not plan.get("monthly"):
            continue
        # Twelve months at the monthly price, less one yearly payment, in cents.
        saved = 12 * plan["monthly"] - plan["yearly"]
        months, rest = divmod(saved, plan["monthly"])
        assert rest == 0 and months >= 1
        expected = format_money(saved, catalog["currency"])
        card = re.search(rf'data-plan="{plan["key"]}".*?</article>', yearly, re.S).group(0)
        free = f" ({months} months free)" if months != 1 else " (1 month free)"
        assert f"Save {expected} a year{free}" in card
        card = re.search(rf'data-plan="{plan["key"]}".*?</article>', monthly, re.S).group(0)
        assert f"Pay yearly and save {expected}{free}" in card
        shown += 1
    assert shown == 2
    assert "Save $98.00 a year (2 months free)" in yearly  # Pro: 12 x $49 - $490
    assert "Save $38.00 a year (2 months free)" in yearly  # Starter: 12 x $19 - $190
    free_card = re.search(r'data-plan="free".*?</article>', yearly, re.S).group(0)
    assert "Save" not in free_card


def test_yearly_savings_say_months_free_only_for_whole_months():
    from portal.models import Price, Product
    from portal.services.catalog import yearly_savings

    def plan(monthly: int, yearly: int, currency: str = "usd") -> Product:
        product = Product(key="p", name="P")
        product.prices = [
            Price(lookup_key="p_month", interval="month", currency=currency, unit_amount=monthly,
                  active=True, usage_type="licensed"),
            Price(lookup_key="p_year", interval="year", currency=currency, unit_amount=yearly,
                  active=True, usage_type="licensed")]
        return product

    saving = yearly_savings(plan(1000, 10000))
    assert (saving.amount, saving.currency, saving.months_free) == (2000, "usd", 2)
    assert yearly_savings(plan(1000, 11500)).months_free is None  # $5 short of a whole month
    assert yearly_savings(plan(1000, 11500)).amount == 500
    assert yearly_savings(plan(1000, 12000)) is None
    assert yearly_savings(plan(1000, 13000)) is None
    assert yearly_savings(plan(0, 0)) is None
    assert yearly_savings(plan(500, 5000, "jpy")).amount == 1000
