"""The staff accounts list (search, filters, MRR and signup order, keyset pages through htmx)
and one account's page (members, billing, subscription history, events, audit)."""
from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event

from portal.extensions import db
from portal.models import Price, Product, Role, WebhookEvent
from portal.services.audit import record_audit
from tests.factories import make_account, make_invoice, make_subscription, make_user
from tests.test_webhooks import customer_object, event_body, post_event

SIGNUP = datetime(2025, 1, 1, 9, 0, tzinfo=UTC)


def product(key: str, prices: list[tuple[str, str, int, str]]) -> Product:
    """Add a plan with prices (stripe id, currency, amount, interval)."""
    row = Product(key=key, name=key.title(), stripe_product_id=f"prod_{key}")
    row.prices = [Price(stripe_price_id=price_id, currency=currency, unit_amount=amount,
                        interval=interval, lookup_key=price_id)
                  for price_id, currency, amount, interval in prices]
    db.session.add(row)
    db.session.commit()
    return row


@pytest.fixture
def book(app):
    """Return six accounts: monthly, yearly, trial in EUR, canceled, free and past due."""
    product("t-starter", [("price_t_starter_m", "usd", 1900, "month")])
    product("t-pro", [("price_t_pro_y", "usd", 49000, "year")])
    product("t-euro", [("price_t_euro_m", "eur", 2500, "month")])

    def account(name: str, month: int, **fields):
        return make_account(name, created_at=SIGNUP.replace(month=month), **fields)

    acme = account("Acme", 1)
    make_user(email="ann@acme.example", account=acme)
    make_subscription(acme, stripe_price_id="price_t_starter_m", quantity=2)
    bolt = account("Bolt", 2)
    make_subscription(bolt, stripe_price_id="price_t_pro_y")
    make_invoice(bolt, number="BOLT-0007")
    crane = account("Crane", 3)
    make_subscription(crane, "trialing", stripe_price_id="price_t_euro_m", currency="eur")
    delta = account("Delta", 4)
    make_subscription(delta, "canceled", stripe_price_id="price_t_starter_m",
                      cancellation_feedback="too_expensive", cancellation_comment="Budget cut",
                      canceled_at=SIGNUP + timedelta(days=100))
    echo = account("Echo 100%", 5, stripe_customer_id="cus_echo")
    fox = account("Fox", 6)
    make_subscription(fox, "past_due", stripe_price_id="price_t_starter_m")
    return {"acme": acme, "bolt": bolt, "crane": crane, "delta": delta, "echo": echo,
            "fox": fox}


@pytest.fixture
def staff(client, login):
    """Return the client signed in as an auditor (staff who only read)."""
    login(make_user(Role.AUDITOR))
    return client


def names(response) -> list[str]:
    """Return the account names of a list page or fragment, in order."""
    assert response.status_code == 200, response.get_data(as_text=True)
    return re.findall(r'<a href="/admin/accounts/\d+">([^<]+)</a>', response.get_data(as_text=True))


def test_search_by_email_name_customer_id_and_invoice_number(book, staff):
    find = lambda q: names(staff.get("/admin/", query_string={"q": q}))  # noqa: E731
    assert find("ann@acme") == ["Acme"]
    assert find("ANN@ACME.EXAMPLE") == ["Acme"]
    assert find("bol") == ["Bolt"]
    assert find("cus_echo") == ["Echo 100%"]
    assert find("BOLT-0007") == ["Bolt"]
    assert find("100%") == ["Echo 100%"]  # a % is a character, not a wildcard
    assert find("%") == ["Echo 100%"]
    assert find("nobody") == []


def test_filters_by_status_plan_and_currency(book, staff):
    only = lambda **args: names(staff.get("/admin/", query_string=args))  # noqa: E731
    assert only(status="trialing") == ["Crane"]
    assert only(status="active") == ["Bolt", "Acme"]
    assert only(status="past_due") == ["Fox"]
    assert only(status="canceled") == ["Delta"]
    assert only(status="free") == ["Echo 100%"]
    assert only(plan="t-starter") == ["Fox", "Delta", "Acme"]
    assert only(currency="eur") == ["Crane"]
    assert only(plan="t-starter", status="active") == ["Acme"]


def test_order_by_mrr_and_by_signup(book, staff):
    page = staff.get("/admin/", query_string={"sort": "mrr_desc", "currency": "usd"})
    # Yearly 490.00 is 40.83 a month; 2 x 19.00 is 38.00; canceled pays nothing.
    assert names(page) == ["Bolt", "Acme", "Fox", "Delta"]
    html = page.get_data(as_text=True)
    assert "$40.83" in html and "$38.00" in html and "$19.00" in html
    assert names(staff.get("/admin/", query_string={"sort": "mrr_asc", "currency": "usd"})) == [
        "Delta", "Fox", "Acme", "Bolt"]
    assert names(staff.get("/admin/", query_string={"sort": "signup_asc"})) == [
        "Acme", "Bolt", "Crane", "Delta", "Echo 100%", "Fox"]
    assert "not comparable" in staff.get("/admin/?sort=mrr_desc").get_data(as_text=True)


@pytest.mark.parametrize("sort", ["signup_desc", "mrr_desc"])
def test_pages_follow_a_keyset_through_htmx_without_offset(app, staff, sort):
    product("t-flat", [("price_t_flat_m", "usd", 1000, "month")])
    for number in range(60):
        account = make_account(f"Account {number:02d}", created_at=SIGNUP + timedelta(
            hours=number // 2))  # pairs share a signup time: the id breaks the tie
        make_subscription(account, stripe_price_id="price_t_flat_m", quantity=1 + number % 7)
    offsets = []

    def keep(_conn, statement, *_args):
        # SQLite prints "OFFSET 0" after every LIMIT, so the statement's own offset is read.
        offsets.append(getattr(statement, "_offset_clause", None))

    event.listen(db.engine, "before_execute", keep)
    try:
        first = staff.get("/admin/", query_string={"sort": sort})
        seen = names(first)
        html = first.get_data(as_text=True)
        while match := re.search(r'hx-get="([^"]+)"', html):
            fragment = staff.get(match.group(1).replace("&amp;", "&"),
                                 headers={"HX-Request": "true"})
            html = fragment.get_data(as_text=True)
            assert "<table" not in html
            seen += names(fragment)
    finally:
        event.remove(db.engine, "before_execute", keep)
    assert len(seen) == 60 and len(set(seen)) == 60 and len(names(first)) == 25
    assert len(offsets) >= 3 and not [offset for offset in offsets if offset is not None]
    if sort == "signup_desc":
        assert seen == [f"Account {n:02d}" for n in range(59, -1, -1)]
    else:
        quantities = [1 + int(name.split()[1]) % 7 for name in seen]
        assert quantities == sorted(quantities, reverse=True)


@pytest.mark.parametrize("args", [
    {"status": "gone"}, {"sort": "name"}, {"currency": "dollars"}, {"after": "not-a-cursor"},
    {"after": "WzEsMl0=", "sort": "signup_desc"}])
def test_bad_list_input_is_a_400_with_a_message(book, staff, args):
    response = staff.get("/admin/", query_string=args)
    assert response.status_code == 400
    assert 'role="alert"' in response.get_data(as_text=True)


def test_account_page_shows_billing_history_events_and_audit(app, book, staff, make_user):
    delta = book["delta"]
    delta.legal_name, delta.billing_email = "Delta Holdings Ltd", "ap@delta.example"
    delta.address = {"line1": "1 Quay", "city": "Leith", "country": "GB"}
    delta.balance, delta.balance_currency = -1250, "usd"
    member = make_user(email="dee@delta.example", account=delta)
    record_audit(member, "subscription.plan_changed", "subscription", "sub_x",
                 amount=900, currency="usd", ip="192.0.2.8",
                 details={"from": "starter_month", "to": "pro_month"})
    record_audit(member, "subscription.cancel_requested", "subscription", "sub_x",
                 details={"feedback": "too_expensive", "comment": "Budget cut"})
    db.session.add(WebhookEvent(stripe_event_id="evt_delta_1", type="customer.updated",
                                stripe_created=1_700_000_000, payload="{}",
                                stripe_customer_id=delta.stripe_customer_id, status="processed"))
    db.session.add(WebhookEvent(stripe_event_id="evt_other", type="customer.updated",
                                stripe_created=1_700_000_000, payload="{}",
                                stripe_customer_id="cus_someone_else", status="processed"))
    db.session.commit()
    html = staff.get(f"/admin/accounts/{delta.id}").get_data(as_text=True)
    assert "dee@delta.example" in html
    assert "Delta Holdings Ltd" in html and "ap@delta.example" in html and "Leith" in html
    assert re.search(r'id="credit-balance">\$12\.50', html)
    assert "too expensive" in html and "Budget cut" in html
    history = html.split('id="subscription-history"')[1].split("</table>")[0]
    assert "plan changed" in history and "starter_month → pro_month" in history
    assert "canceled" in history and "started" in history
    events = html.split('id="account-events"')[1].split("</table>")[0]
    assert "evt_delta_1" in events and "evt_other" not in events
    audit = html.split('id="account-audit"')[1].split("</table>")[0]
    assert "subscription.plan_changed" in audit and "192.0.2.8" in audit and "$9.00" in audit
    assert 'id="usage"' in html


def test_webhook_events_remember_the_customer_they_touched(app, client):
    post_event(client, app, event_body("customer.updated", customer_object("cus_abc"),
                                       event_id="evt_cust", created=1_700_000_000))
    post_event(client, app, event_body(
        "payment_intent.created", {"id": "pi_abc", "object": "payment_intent",
                                   "customer": "cus_abc", "amount": 100, "currency": "usd"},
        event_id="evt_pi", created=1_700_000_000))
    post_event(client, app, event_body(
        "product.created", {"id": "prod_abc", "object": "product"},
        event_id="evt_prod", created=1_700_000_000))
    rows = dict(db.session.execute(db.select(WebhookEvent.stripe_event_id,
                                             WebhookEvent.stripe_customer_id)).all())
    assert rows == {"evt_cust": "cus_abc", "evt_pi": "cus_abc", "evt_prod": None}
