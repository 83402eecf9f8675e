"""Who may see and change what: customers, admins and auditors."""
from __future__ import annotations

import pytest

from portal.extensions import db
from portal.models import AuditEntry, Role, User
from tests.helpers import csrf_from


def admin_rules(app, ids: dict | None = None):
    """Return (url, methods) for every admin URL, each path argument filled in.

    Admin URLs are every rule under /admin or of a blueprint named admin*, so a route added
    later (by any blueprint that mounts there) is covered without editing this test.
    """
    rules = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("admin") or rule.rule.startswith("/admin"):
            values = {name: (ids or {}).get(name, 1) for name in rule.arguments}
            _domain, url = rule.build(values, append_unknown=False)
            rules.append((url, sorted(rule.methods - {"HEAD", "OPTIONS"})))
    assert len(rules) >= 6, rules
    return rules


def test_customer_gets_403_on_every_admin_url(app, client, make_user, login):
    login(make_user())
    token = csrf_from(client, "/billing/")
    for url, methods in admin_rules(app):
        for method in methods:
            response = client.open(url, method=method, data={"csrf_token": token, "active": "0"})
            assert response.status_code == 403, (method, url, response.status_code)


def test_auditor_reads_admin_pages_but_every_change_is_403(app, client, make_user, login):
    customer = make_user()
    auditor = make_user(Role.AUDITOR)
    login(auditor)
    token = csrf_from(client, "/admin/")
    posts = 0
    ids = {"account_id": customer.account_id, "user_id": customer.id}
    for url, methods in admin_rules(app, ids):
        if "GET" in methods:
            # A page naming an object other than the account or user (id 1) may not find it.
            others = url.replace(f"/accounts/{customer.account_id}", "").replace(
                f"/users/{customer.id}", "")
            allowed = (200,) if not any(ch.isdigit() for ch in others) else (200, 404)
            assert client.get(url).status_code in allowed, url
        for method in set(methods) - {"GET"}:
            posts += 1
            response = client.open(url, method=method, data={
                "csrf_token": token, "active": "0", "role": "admin"})
            assert response.status_code == 403, (method, url)
    assert posts >= 2
    db.session.refresh(customer)
    assert customer.active
    assert db.session.scalar(db.select(db.func.count(AuditEntry.id)).where(
        AuditEntry.action != "staff.signed_in")) == 0


def test_anonymous_visitor_is_sent_to_sign_in(app, client):
    for url, _methods in admin_rules(app):
        response = client.get(url)
        if response.status_code != 405:
            assert response.status_code == 302
            assert response.headers["Location"].startswith("/auth/login")


def test_customer_sees_only_own_account(client, make_user, login):
    me = make_user(account_name="Mine Inc")
    make_user(account_name="Theirs Inc")
    login(me)
    page = client.get("/billing/").get_data(as_text=True)
    assert "Mine Inc" in page and "Theirs Inc" not in page


def test_admin_disables_and_enables_a_user_with_audit(client, make_user, login):
    admin = make_user(Role.ADMIN)
    customer = make_user()
    login(admin)
    token = csrf_from(client, f"/admin/accounts/{customer.account_id}")
    response = client.post(f"/admin/users/{customer.id}/active",
                           data={"csrf_token": token, "active": "0"})
    assert response.status_code == 303
    db.session.refresh(customer)
    assert not customer.active
    entry = db.session.scalar(db.select(AuditEntry).where(AuditEntry.action != "staff.signed_in"))
    assert (entry.action, entry.actor_id, entry.target_id) == ("user.disabled", admin.id,
                                                               str(customer.id))
    client.post(f"/admin/users/{customer.id}/active", data={"csrf_token": token, "active": "1"})
    db.session.refresh(customer)
    assert customer.active
    audit_page = client.get("/admin/audit").get_data(as_text=True)
    assert "user.disabled" in audit_page and "user.enabled" in audit_page


def test_last_admin_cannot_be_demoted(client, make_user, login):
    admin = make_user(Role.ADMIN)
    other = make_user(Role.ADMIN)
    login(admin)
    token = csrf_from(client, "/admin/staff")
    client.post(f"/admin/users/{other.id}/role", data={"csrf_token": token, "role": "auditor"})
    db.session.refresh(other)
    assert other.role == Role.AUDITOR
    # `admin` is now the only admin; demoting it from another admin's session is impossible,
    # and admins cannot act on themselves.
    response = client.post(f"/admin/users/{admin.id}/active",
                           data={"csrf_token": token, "active": "0"})
    assert response.status_code == 303
    db.session.refresh(admin)
    assert admin.active


def test_changing_a_customer_role_is_refused(client, make_user, login):
    login(make_user(Role.ADMIN))
    customer = make_user()
    token = csrf_from(client, "/admin/staff")
    response = client.post(f"/admin/users/{customer.id}/role",
                           data={"csrf_token": token, "role": "admin"})
    assert response.status_code == 400
    assert db.session.get(User, customer.id).role == Role.CUSTOMER


@pytest.mark.parametrize("missing", [404])
def test_admin_gets_404_for_unknown_account(client, make_user, login, missing):
    login(make_user(Role.ADMIN))
    assert client.get("/admin/accounts/999999").status_code == missing
