"""The audit log: append-only in the database, complete for sign-ins and billing details,
browsable with filters and keyset pages by staff, exported as streamed CSV."""
from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.exc import DBAPIError

from portal.extensions import db
from portal.models import AuditEntry, Role
from portal.services.audit import record_audit
from portal.services.catalog_sync import sync_catalog
from tests.helpers import csrf_from
from tests.invoice_support import signed_in
from tests.test_refunds import admin, paid_charge, refund  # noqa: F401  (fixtures)

ROOT = Path(__file__).resolve().parent.parent
READ_ONLY = {"GET", "HEAD", "OPTIONS"}


def actions() -> list[str]:
    """Return every audit action, oldest first."""
    db.session.expire_all()
    return list(db.session.scalars(db.select(AuditEntry.action).order_by(AuditEntry.id)))


def test_the_database_refuses_to_update_or_delete_an_entry(app, make_user):
    staff_admin = make_user(Role.ADMIN)
    record_audit(staff_admin, "user.disabled", "user", 7, ip="198.51.100.1")
    db.session.commit()
    with pytest.raises(DBAPIError, match="append-only"):
        db.session.execute(db.update(AuditEntry).values(action="user.enabled"))
    db.session.rollback()
    with pytest.raises(DBAPIError, match="append-only"):
        db.session.execute(db.delete(AuditEntry))
    db.session.rollback()
    assert actions() == ["user.disabled"]


def test_no_route_changes_or_removes_audit_entries(app):
    audit_rules = [rule for rule in app.url_map.iter_rules()
                   if "audit" in rule.rule or "audit" in rule.endpoint]
    assert {rule.endpoint for rule in audit_rules} >= {"admin.audit", "admin.audit_export"}
    for rule in audit_rules:
        assert rule.methods <= READ_ONLY, (rule.rule, rule.methods)
    # Nor does any portal code write to the table other than by adding rows.
    writes = re.compile(r"(update|delete)\(\s*AuditEntry|audit_entries.*(UPDATE|DELETE)")
    for path in (ROOT / "portal").rglob("*.py"):
        if "migrations" not in path.parts:
            assert not writes.search(path.read_text()), path


def test_staff_sign_ins_and_failed_sign_ins_are_recorded_with_ip(app, client, make_user):
    staff_admin = make_user(Role.ADMIN)
    customer = make_user()
    ip = {"REMOTE_ADDR": "203.0.113.9"}
    token = csrf_from(client, "/auth/login")
    client.post("/auth/login", data={"email": staff_admin.email, "password": "wrong one",
                                     "csrf_token": token}, environ_base=ip)
    client.post("/auth/login", data={"email": "nobody@example.com", "password": "x",
                                     "csrf_token": token}, environ_base=ip)
    response = client.post("/auth/login", data={
        "email": staff_admin.email, "password": "correct horse battery", "csrf_token": token},
        environ_base=ip)
    assert response.status_code == 302
    failed = db.session.scalars(db.select(AuditEntry).where(
        AuditEntry.action == "signin.failed").order_by(AuditEntry.id)).all()
    assert [(e.details["email"], e.target_id, e.ip_address, e.actor_id) for e in failed] == [
        (staff_admin.email, str(staff_admin.id), "203.0.113.9", None),
        ("nobody@example.com", "unknown", "203.0.113.9", None)]
    [signed] = db.session.scalars(db.select(AuditEntry).where(
        AuditEntry.action == "staff.signed_in")).all()
    assert (signed.actor_id, signed.ip_address, signed.details["role"]) == (
        staff_admin.id, "203.0.113.9", "admin")
    # A customer's own sign-in is theirs, not an audited staff action.
    other = app.test_client()
    other.post("/auth/login", data={"email": customer.email, "password": "correct horse battery",
                                    "csrf_token": csrf_from(other, "/auth/login")})
    assert actions().count("staff.signed_in") == 1


def test_billing_details_changes_are_recorded_on_the_account(app, make_user, stripe_api):
    user = make_user()
    client = signed_in(app, user)
    token = csrf_from(client, "/billing/settings")
    response = client.post("/billing/settings/details", data={
        "csrf_token": token, "name": "Acme", "legal_name": "Acme Ltd",
        "billing_email": "ap@acme.example", "line1": "1 Main St", "city": "Leeds",
        "postal_code": "LS1 1AA", "country": "GB"}, environ_base={"REMOTE_ADDR": "192.0.2.4"})
    assert response.status_code == 303
    client.post("/billing/settings/preferences", data={"csrf_token": token})
    [reminders] = db.session.scalars(db.select(AuditEntry).where(
        AuditEntry.action == "billing_details.reminders_changed")).all()
    assert reminders.details == {"reminder_emails": False}
    [entry] = db.session.scalars(db.select(AuditEntry).where(
        AuditEntry.action == "billing_details.changed")).all()
    assert (entry.actor_id, entry.account_id, entry.ip_address) == (
        user.id, user.account_id, "192.0.2.4")
    assert entry.stripe_request_id.startswith("req_")
    assert entry.details["legal_name"] == "Acme Ltd"
    assert entry.details["billing_email"] == "ap@acme.example"


def test_catalog_sync_is_recorded(app, stripe_api):
    report = sync_catalog()
    [entry] = db.session.scalars(db.select(AuditEntry).where(
        AuditEntry.action == "catalog.synced")).all()
    assert entry.actor_id is None and entry.details["created"] == report.created
    assert report.created


@pytest.fixture
def book(app, make_user):
    """Return a small audit log: two admins, two accounts, actions over three days."""
    alice = make_user(Role.ADMIN, email="alice@example.com")
    bob = make_user(Role.ADMIN, email="bob@example.com")
    first, second = make_user().account, make_user().account
    day = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
    rows = [
        (alice, "refund.requested", first, 0, 1500),
        (alice, "refund.sent", first, 0, 1500),
        (bob, "refund.approved", second, 1, 9900),
        (bob, "user.disabled", second, 1, None),
        (None, "catalog.synced", None, 2, None),
        (alice, "webhook_events.retried", None, 2, None),
    ]
    for actor, action, account, days, amount in rows:
        entry = record_audit(actor, action, "thing", "=cmd|' /C calc'!A0", amount=amount,
                             currency="usd" if amount else None,
                             account_id=account.id if account else None)
        entry.created_at = day + timedelta(days=days)
    db.session.commit()
    return {"alice": alice, "bob": bob, "first": first, "second": second}


def shown_actions(html: str) -> list[str]:
    """Return the actions in the audit table's rows, in page order."""
    return re.findall(r"<td><code>([a-z_.]+)</code></td>", html)


def test_staff_filter_the_log_by_actor_action_account_and_dates(app, book, make_user, login,
                                                                client):
    login(make_user(Role.AUDITOR))
    page = lambda **args: client.get("/admin/audit", query_string=args)  # noqa: E731
    everything = [a for a in shown_actions(page().get_data(as_text=True))
                  if a != "staff.signed_in"]
    assert everything == ["webhook_events.retried", "catalog.synced", "user.disabled",
                          "refund.approved", "refund.sent", "refund.requested"]
    assert shown_actions(page(actor="bob@example.com").get_data(as_text=True)) == [
        "user.disabled", "refund.approved"]
    assert shown_actions(page(actor="system").get_data(as_text=True)) == ["catalog.synced"]
    assert shown_actions(page(action="refund").get_data(as_text=True)) == [
        "refund.approved", "refund.sent", "refund.requested"]
    assert shown_actions(page(action="refund.sent").get_data(as_text=True)) == ["refund.sent"]
    assert shown_actions(page(account=book["second"].id).get_data(as_text=True)) == [
        "user.disabled", "refund.approved"]
    assert shown_actions(page(since="2026-03-11", until="2026-03-11").get_data(
        as_text=True)) == ["user.disabled", "refund.approved"]
    refused = page(since="yesterday")
    assert refused.status_code == 400 and "2026-11-29" in refused.get_data(as_text=True)
    assert page(since="2026-03-12", until="2026-03-10").status_code == 400
    assert page(account="first").status_code == 400


def test_older_entries_load_by_keyset_through_htmx(app, make_user, login, client):
    staff_admin = make_user(Role.ADMIN)
    for number in range(120):
        record_audit(staff_admin, "user.enabled", "user", number)
    db.session.commit()
    login(staff_admin)
    first = client.get("/admin/audit?action=user.enabled").get_data(as_text=True)
    assert len(shown_actions(first)) == 50
    more = re.search(r'hx-get="([^"]+)"', first).group(1).replace("&amp;", "&")
    assert "before=" in more and "action=user.enabled" in more and "offset" not in more
    second = client.get(more, headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "<table" not in second  # rows only, swapped in place of the link
    third = client.get(re.search(r'hx-get="([^"]+)"', second).group(1).replace("&amp;", "&"),
                       headers={"HX-Request": "true"}).get_data(as_text=True)
    targets = [int(t) for t in re.findall(r"<td>user (\d+)</td>", first + second + third)]
    assert targets == list(range(119, -1, -1))
    assert "hx-get" not in third


def test_csv_export_streams_every_matching_entry(app, book, make_user, login, client):
    login(make_user(Role.AUDITOR))
    response = client.get("/admin/audit.csv?action=refund")
    assert response.status_code == 200 and response.is_streamed
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"].startswith('attachment; filename="audit-')
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [(r["action"], r["actor"], r["amount"], r["currency"]) for r in rows] == [
        ("refund.approved", "bob@example.com", "9900", "usd"),
        ("refund.sent", "alice@example.com", "1500", "usd"),
        ("refund.requested", "alice@example.com", "1500", "usd")]
    # A cell a spreadsheet would run as a formula is written as text.
    assert rows[0]["target_id"] == "'=cmd|' /C calc'!A0"
    assert client.get("/admin/audit.csv?until=soon").status_code == 400


def test_csv_export_reads_past_one_batch(app, make_user, login, client):
    staff_admin = make_user(Role.ADMIN)
    db.session.add_all([AuditEntry(actor_id=staff_admin.id, action="user.enabled",
                                   target_type="user",
                                   target_id=str(number), details={}) for number in range(2100)])
    db.session.commit()
    login(staff_admin)
    body = client.get("/admin/audit.csv?action=user.enabled").get_data(as_text=True)
    ids = [row["target_id"] for row in csv.DictReader(io.StringIO(body))]
    assert ids == [str(number) for number in range(2099, -1, -1)]


def test_a_wrong_step_up_password_is_recorded(app, client, admin, paid_charge):  # noqa: F811
    charge = paid_charge(2000)
    response = refund(client, charge, "1.00", 100, password="not the password")
    assert response.status_code == 403
    [entry] = db.session.scalars(db.select(AuditEntry).where(
        AuditEntry.action == "step_up.failed")).all()
    assert entry.actor_id == admin.id
    assert entry.details == {"path": f"/admin/charges/{charge.id}/refund"}
