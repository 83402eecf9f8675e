"""Revenue reports without a book: who may see them, bad input, MRR arithmetic, exports."""
from __future__ import annotations

from datetime import UTC, datetime
from fractions import Fraction

import pytest

from portal.extensions import db
from portal.models import MrrChange, Role
from portal.services.mrr import monthly_amount, movement_kind, round_half_up
from portal.services.report_sql import MonthRange, RangeError
from tests.invoice_support import signed_in

EXPORT = "/admin/reports/export"
REPORT_URLS = ["/admin/reports/", "/admin/reports/revenue", "/admin/reports/customers",
               f"{EXPORT}?table=mrr&format=csv", f"{EXPORT}?table=mrr_changes&format=json",
               f"{EXPORT}?table=revenue&format=csv", f"{EXPORT}?table=plans&format=json",
               f"{EXPORT}?table=trials&format=csv"]


def test_customers_get_403_and_staff_read(app, make_user):
    customer = signed_in(app, make_user())
    staff = [signed_in(app, make_user(role=role)) for role in (Role.AUDITOR, Role.ADMIN)]
    for url in REPORT_URLS:
        assert customer.get(url).status_code == 403, url
        assert [person.get(url).status_code for person in staff] == [200, 200], url


def test_signed_out_visitors_are_sent_to_sign_in(client):
    assert client.get("/admin/reports/").status_code == 302


@pytest.mark.parametrize("query,message", [
    ({"first": "2026-13"}, "YYYY-MM"),
    ({"first": "2026-05", "last": "2026-01"}, "must not be after"),
    ({"first": "2020-01", "last": "2026-01"}, "at most 36 months"),
    ({"currency": "dollars"}, "three-letter"),
])
def test_bad_selection_is_a_400_that_says_why(app, make_user, query, message):
    auditor = signed_in(app, make_user(role=Role.AUDITOR))
    response = auditor.get("/admin/reports/", query_string=query)
    assert response.status_code == 400 and message in response.get_data(as_text=True)
    assert auditor.get("/admin/reports/nonsense").status_code == 404
    assert auditor.get(f"{EXPORT}?table=users&format=csv").status_code == 400
    assert auditor.get(f"{EXPORT}?table=mrr&format=xlsx").status_code == 400


def test_htmx_selector_swaps_only_the_report_body(app, make_user):
    auditor = signed_in(app, make_user(role=Role.AUDITOR))
    full = auditor.get("/admin/reports/").get_data(as_text=True)
    assert 'hx-get="/admin/reports/"' in full and 'hx-target="#report-body"' in full
    fragment = auditor.get("/admin/reports/", headers={"HX-Request": "true"}).get_data(
        as_text=True)
    assert "<html" not in fragment and "MRR waterfall" in fragment


def test_monthly_normalisation_rounds_half_up_in_integers():
    assert monthly_amount(49000, "year") == 4083  # 4083.33
    assert monthly_amount(19000, "year") == 1583  # 1583.33
    assert monthly_amount(1000, "year") == 83     # 83.33
    assert monthly_amount(1002, "year") == 84     # 83.5 rounds up
    assert monthly_amount(4900, "month") == 4900
    assert monthly_amount(3000, "month", 3) == 1000  # quarterly
    assert round_half_up(Fraction(5, 2)) == 3 and round_half_up(Fraction(7, 3)) == 2


def test_movement_kinds_follow_chartmogul():
    assert movement_kind(0, 1900, paid_before=False) == "new_business"
    assert movement_kind(0, 1900, paid_before=True) == "reactivation"
    assert movement_kind(1900, 4900, paid_before=True) == "expansion"
    assert movement_kind(4900, 1900, paid_before=True) == "contraction"
    assert movement_kind(4900, 0, paid_before=True) == "churn"


def test_month_range_defaults_to_the_twelve_months_ending_now():
    found = MonthRange.parse(None, None, today=datetime(2026, 3, 15, tzinfo=UTC).date())
    assert (found.first, found.last) == ("2025-04", "2026-03") and len(found.months) == 12
    with pytest.raises(RangeError):
        MonthRange.parse("2026-1", "2026-02")


def test_mrr_changes_are_bucketed_by_utc_month_on_this_database(app, make_user):
    """A change one second before midnight UTC on 31 January is January's, not February's."""
    account = make_user().account
    for at, old, new, kind in [(datetime(2026, 1, 31, 23, 59, 59, tzinfo=UTC), 0, 1000,
                                "new_business"),
                               (datetime(2026, 2, 1, 0, 0, 0, tzinfo=UTC), 1000, 1500,
                                "expansion")]:
        db.session.add(MrrChange(account_id=account.id, stripe_customer_id="cus_edge",
                                 stripe_subscription_id="sub_edge", currency="usd", at=at,
                                 old_mrr=old, new_mrr=new, kind=kind))
    db.session.commit()
    auditor = signed_in(app, make_user(role=Role.AUDITOR))
    body = auditor.get(EXPORT, query_string={"first": "2026-01", "last": "2026-02",
                                             "table": "mrr", "format": "json"}).get_json()
    assert [(row["month"], row["new_business"], row["expansion"]) for row in body] == [
        ("2026-01", 1000, 0), ("2026-02", 0, 500)]
