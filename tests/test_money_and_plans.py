"""Money formatting and the plan list."""
from __future__ import annotations

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
