"""The API keys page: create (the secret shown once), list, revoke; CSRF, audit, who may."""
from __future__ import annotations

import re

from portal.extensions import db
from portal.models import ApiKey, AuditEntry, Role
from tests.helpers import csrf_from
from tests.usage_support import event, post_usage

SECRET = re.compile(r'<code id="new-key-secret">(bp_test_[A-Za-z0-9_-]+)</code>')


def create_key(client, name: str):
    """Create a key through the page's form; return the answer."""
    token = csrf_from(client, "/billing/api-keys")
    return client.post("/billing/api-keys", data={"name": name, "csrf_token": token})


def test_created_key_is_shown_once_and_works(client, make_user, login):
    customer = make_user()
    login(customer)
    response = create_key(client, "production server")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    secret = SECRET.search(page).group(1)
    api_key = db.session.scalar(db.select(ApiKey))
    assert api_key.account_id == customer.account_id and api_key.name == "production server"
    assert secret not in (api_key.key_hash, api_key.prefix) and secret.startswith(api_key.prefix)
    assert len(secret) > 40
    audit = db.session.scalar(db.select(AuditEntry).where(AuditEntry.action == "api_key.created"))
    assert audit.actor_id == customer.id and audit.details["prefix"] == api_key.prefix

    listing = client.get("/billing/api-keys").get_data(as_text=True)
    assert secret not in listing
    assert api_key.prefix in listing and "production server" in listing and "Never" in listing
    assert post_usage(client, secret, event("from-page-key")).status_code == 200
    assert "Never" not in client.get("/billing/api-keys").get_data(as_text=True)


def test_revoke_refuses_the_key_from_then_on(client, make_user, login):
    login(make_user())
    secret = SECRET.search(create_key(client, "ci").get_data(as_text=True)).group(1)
    api_key = db.session.scalar(db.select(ApiKey))
    token = csrf_from(client, "/billing/api-keys")
    response = client.post(f"/billing/api-keys/{api_key.id}/revoke", data={"csrf_token": token})
    assert response.status_code == 302
    db.session.refresh(api_key)
    assert api_key.revoked_at is not None
    assert db.session.scalar(db.select(AuditEntry).where(AuditEntry.action == "api_key.revoked"))
    assert post_usage(client, secret, event("after")).status_code == 401
    assert "Revoked" in client.get("/billing/api-keys").get_data(as_text=True)


def test_forms_need_csrf(client, make_user, login):
    login(make_user())
    assert client.post("/billing/api-keys", data={"name": "x"}).status_code == 400
    assert db.session.scalar(db.select(db.func.count(ApiKey.id))) == 0
    create_key(client, "kept")
    api_key = db.session.scalar(db.select(ApiKey))
    client.post(f"/billing/api-keys/{api_key.id}/revoke", data={})
    db.session.refresh(api_key)
    assert api_key.revoked_at is None


def test_a_name_is_required(client, make_user, login):
    login(make_user())
    response = create_key(client, "   ")
    assert response.status_code == 400
    assert "Give the key a name." in response.get_data(as_text=True)


def test_another_accounts_key_cannot_be_revoked(client, make_user, login):
    owner = make_user()
    login(owner)
    create_key(client, "owner's")
    api_key = db.session.scalar(db.select(ApiKey))
    client.post("/auth/logout", data={"csrf_token": csrf_from(client, "/billing/api-keys")})
    login(make_user())
    token = csrf_from(client, "/billing/api-keys")
    assert "owner's" not in client.get("/billing/api-keys").get_data(as_text=True)
    client.post(f"/billing/api-keys/{api_key.id}/revoke", data={"csrf_token": token})
    db.session.refresh(api_key)
    assert api_key.revoked_at is None


def test_staff_do_not_get_the_page(client, make_user, login):
    login(make_user(role=Role.ADMIN))
    assert client.get("/billing/api-keys").status_code == 403
