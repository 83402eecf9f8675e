"""What every page shares: date and money filters, the invoice table and status badges,
form macros and CSRF, the favicon and the error pages."""
from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from flask import render_template_string

from portal.models import Role
from portal.template_filters import format_date, format_datetime
from tests.factories import (
    CREATED,
    make_account,
    make_invoice,
    make_subscription,
    make_user,
)
from tests.helpers import csrf_from

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
ONE_DATE = re.compile(r"^\d\d [A-Z][a-z]{2} \d{4}$")


def test_dates_are_one_readable_utc_format():
    moment = datetime(2025, 11, 29, 14, 5, 9, tzinfo=UTC)
    assert format_date(moment) == "29 Nov 2025"
    assert format_datetime(moment) == "29 Nov 2025, 14:05:09 UTC"
    # 23:30 in New York on the 29th is already the 30th in UTC: pages show the UTC day.
    new_york = timezone(timedelta(hours=-5))
    assert format_date(datetime(2025, 11, 29, 23, 30, tzinfo=new_york)) == "30 Nov 2025"
    assert format_date(datetime(2025, 9, 3, tzinfo=UTC)) == "03 Sep 2025"
    with pytest.raises(ValueError, match="naive"):
        format_date(datetime(2025, 11, 29))


def test_templates_format_dates_and_money_only_through_the_filters():
    for path in TEMPLATES.rglob("*.html"):
        source = path.read_text()
        assert "strftime" not in source, path
        assert "format_currency" not in source, path


def test_filters_are_registered_on_the_app(app):
    with app.test_request_context("/"):
        rendered = render_template_string(
            "{{ when | date }} · {{ when | datetime }} · {{ 123456 | money('usd') }}",
            when=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    assert rendered == "02 Jan 2026 · 02 Jan 2026, 03:04:05 UTC · $1,234.56"


def invoice_table(page: str) -> str:
    """Return the invoice table's markup from a page."""
    match = re.search(r'<table class="table" id="invoices">.*?</table>', page, re.S)
    assert match, "no invoice table on the page"
    return match.group(0)


def test_dashboard_and_staff_page_show_the_same_invoice_table(app, client, login):
    customer = make_user()
    account = customer.account
    make_subscription(account, status="past_due")
    for status, total in (("paid", 4900), ("open", 1900), ("void", 2500),
                          ("uncollectible", 900)):
        make_invoice(account, status=status, total=total)
    login(customer)
    dashboard = client.get("/billing/").get_data(as_text=True)
    client.post("/auth/logout", data={"csrf_token": csrf_from(client, "/billing/")})
    login(make_user(Role.AUDITOR))
    staff_page = client.get(f"/admin/accounts/{account.id}").get_data(as_text=True)

    table = invoice_table(dashboard)
    assert table == invoice_table(staff_page)
    assert table.count("<tr data-invoice=") == 4
    for status in ("paid", "open", "void", "uncollectible"):
        assert f'<span class="status status-{status}">{status}</span>' in table
    assert "$49.00" in table and "$19.00" in table and "$25.00" in table and "$9.00" in table
    assert table.count(format_date(CREATED)) == 4
    # The subscription's badge is the same macro: words, not the status code.
    for page in (dashboard, staff_page):
        assert '<span class="status status-past_due">past due</span>' in page


def test_every_date_on_the_dashboard_and_staff_page_has_one_format(client, login):
    customer = make_user()
    account = customer.account
    start = datetime(2025, 12, 1, 12, tzinfo=UTC)
    make_subscription(account, current_period_start=start,
                      current_period_end=start + timedelta(days=31))
    make_invoice(account)
    login(customer)
    dashboard = client.get("/billing/").get_data(as_text=True)
    assert "01 Dec 2025 – 01 Jan 2026" in dashboard
    client.post("/auth/logout", data={"csrf_token": csrf_from(client, "/billing/")})
    login(make_user(Role.ADMIN))
    staff_page = client.get(f"/admin/accounts/{account.id}").get_data(as_text=True)
    assert "<dt>Period ends</dt><dd>01 Jan 2026</dd>" in staff_page
    accounts = client.get("/admin/").get_data(as_text=True)
    created = re.findall(r"<td>([^<]*\d{4}[^<]*)</td>", accounts)
    assert created and all(ONE_DATE.match(value) for value in created), created
    iso = re.compile(r"\d{4}-\d\d-\d\d")
    assert not iso.search(staff_page) and not iso.search(accounts) and not iso.search(dashboard)


def test_no_page_writes_a_csrf_input_by_hand():
    # Only the form macro renders CSRF, and only from a form object's own field.
    for path in TEMPLATES.rglob("*.html"):
        source = path.read_text()
        assert 'name="csrf_token"' not in source, path
        assert "csrf_token()" not in source.replace(
            '''hx-headers='{"X-CSRFToken": "{{ csrf_token() }}"}''', ""), path


def test_plan_buttons_and_sign_out_carry_a_working_token(app, client, login):
    from portal.cli import prepare_database

    prepare_database(seed_demo=False)
    login(make_user())
    page = client.get("/billing/plans").get_data(as_text=True)
    forms = re.findall(r'<form method="post".*?</form>', page, re.S)
    assert len(forms) >= 3  # sign out, and a button per paid plan with a price
    for form in forms:
        assert 'name="csrf_token"' in form, form
    logout = next(form for form in forms if "/auth/logout" in form)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', logout).group(1)
    assert client.post("/auth/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/billing/").status_code == 302


def test_fields_without_autocomplete_render_no_autocomplete_attribute(app):
    from portal.billing.forms import CancelForm

    with app.test_request_context("/"):
        rendered = render_template_string(
            '{% from "_macros/forms.html" import field %}'
            '{{ field(form.feedback) }}{{ field(form.comment) }}'
            '{{ field(form.comment, autocomplete="off") }}', form=CancelForm())
    assert "None" not in rendered
    assert rendered.count("autocomplete=") == 1 and 'autocomplete="off"' in rendered


def test_favicon_is_served_and_linked(client):
    icon = client.get("/favicon.ico")
    assert icon.status_code == 200
    assert icon.mimetype in ("image/vnd.microsoft.icon", "image/x-icon")
    assert icon.data[:4] == b"\x00\x00\x01\x00"  # an ICO header, not a page
    icon.close()
    page = client.get("/auth/login").get_data(as_text=True)
    svg = re.search(r'<link rel="icon" href="([^"]+\.svg)"', page)
    assert svg
    drawing = client.get(svg.group(1))
    assert drawing.status_code == 200 and drawing.data.startswith(b"<svg")
    drawing.close()
    assert '<link rel="icon" href="/favicon.ico"' in page


def test_not_found_and_forbidden_pages_speak_plainly(client, login):
    missing = client.get("/no/such/page")
    page = missing.get_data(as_text=True)
    assert missing.status_code == 404
    assert "There is nothing at this address" in page
    assert "requested URL" not in page and "server" not in page
    login(make_user())
    forbidden = client.get("/admin/")
    page = forbidden.get_data(as_text=True)
    assert forbidden.status_code == 403
    assert "Your sign-in does not open this page" in page
    assert "permission" not in page and "server" not in page
    as_json = client.get("/admin/", headers={"Accept": "application/json"}).get_json()
    assert as_json["error"]["message"].startswith("Your sign-in does not open this page")


def test_a_views_own_error_message_is_kept(app):
    from flask import abort

    @app.route("/gone-for-test")
    def gone():
        abort(404, "That invoice was deleted.")

    page = app.test_client().get("/gone-for-test").get_data(as_text=True)
    assert "That invoice was deleted." in page
    assert "There is nothing at this address" not in page


def test_staff_account_page_shows_the_owner_signed_in_at_registration(client, login):
    # Factories build rows without signing in; registering does sign in (tests/test_auth.py).
    owner = make_user(last_login_at=datetime(2025, 11, 20, 8, 0, tzinfo=UTC))
    other = make_user(account=owner.account)
    login(make_user(Role.AUDITOR))
    page = client.get(f"/admin/accounts/{owner.account_id}").get_data(as_text=True)
    assert "20 Nov 2025, 08:00:00 UTC" in page
    row = re.search(rf"<td>{re.escape(other.email)}</td>.*?</tr>", page, re.S).group(0)
    assert "never" in row


def test_factories_build_rows_that_pages_and_constraints_accept(app):
    account = make_account(name="Factory Ltd")
    assert account.id and account.stripe_customer_id is None
    invoice = make_invoice(account, status="open", total=1234)
    assert (invoice.amount_due, invoice.amount_paid, invoice.amount_remaining) == (1234, 0, 1234)
    assert account.stripe_customer_id == invoice.stripe_customer_id
