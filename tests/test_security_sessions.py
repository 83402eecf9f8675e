"""Issue 10, finding 4: sign-ins can be revoked (logout, password change or reset, disable),
remember-me tokens rotate and expire, staff sessions time out."""
from __future__ import annotations

import time
from datetime import timedelta

from portal.auth.sessions import REMEMBER_COOKIE, SEEN_AT, SIGNED_IN_AT
from portal.extensions import db
from portal.models import RememberToken, Role
from portal.models.types import utcnow
from tests.factories import DEFAULT_PASSWORD
from tests.helpers import csrf_from

NEW_PASSWORD = "violet tram umbrella"


def sign_in(client, user, remember=False):
    """Sign in through the form; return the response."""
    data = {"email": user.email, "password": DEFAULT_PASSWORD,
            "csrf_token": csrf_from(client, "/auth/login")}
    if remember:
        data["remember"] = "y"
    response = client.post("/auth/login", data=data)
    assert response.status_code == 302, response.get_data(as_text=True)
    return response


def copy_to_new_client(app, client, name):
    """Return a new client carrying only the named cookie of `client` (an attacker's copy)."""
    cookie = client.get_cookie(name)
    assert cookie is not None, f"no {name} cookie"
    other = app.test_client()
    other.set_cookie(name, cookie.value)
    return other, cookie.value


def signed_in(client) -> bool:
    """Return True when the client's cookies open the billing dashboard."""
    return client.get("/billing/").status_code == 200


def test_copied_session_cookie_stops_working_after_logout(app, client, make_user):
    sign_in(client, make_user())
    copy, _ = copy_to_new_client(app, client, "session")
    assert signed_in(copy)
    client.post("/auth/logout", data={"csrf_token": csrf_from(client, "/billing/")})
    assert not signed_in(copy)
    assert not signed_in(client)


def test_remember_cookie_rotates_on_use_and_dies_at_logout(app, client, make_user):
    user = make_user()
    response = sign_in(client, user, remember=True)
    cookies = response.headers.getlist("Set-Cookie")
    remember = next(c for c in cookies if c.startswith(REMEMBER_COOKIE + "="))
    # 30 days, not Flask-Login's 365.
    assert "Max-Age=2592000" in remember or "Max-Age=2591999" in remember
    assert "HttpOnly" in remember
    first, value = copy_to_new_client(app, client, REMEMBER_COOKIE)
    assert signed_in(first)
    rotated = first.get_cookie(REMEMBER_COOKIE).value
    assert rotated != value
    # The used value is spent: a second copy of it gets nowhere.
    replay = app.test_client()
    replay.set_cookie(REMEMBER_COOKIE, value)
    assert not signed_in(replay)
    # Logout anywhere ends every remember-me token of the user.
    later = app.test_client()
    later.set_cookie(REMEMBER_COOKIE, rotated)
    client.post("/auth/logout", data={"csrf_token": csrf_from(client, "/billing/")})
    assert not signed_in(later)
    assert db.session.scalar(db.select(db.func.count(RememberToken.id))) == 0


def test_remember_token_expires_after_thirty_days(app, client, make_user):
    sign_in(client, make_user(), remember=True)
    token = db.session.scalar(db.select(RememberToken))
    assert timedelta(days=29) < token.expires_at - utcnow() <= timedelta(days=30)
    token.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    copy, _ = copy_to_new_client(app, client, REMEMBER_COOKIE)
    assert not signed_in(copy)


def test_change_password_ends_other_sessions_and_remember_me(app, client, make_user, outbox):
    user = make_user()
    sign_in(client, user, remember=True)
    session_copy, _ = copy_to_new_client(app, client, "session")
    remember_copy, _ = copy_to_new_client(app, client, REMEMBER_COOKIE)
    page = client.get("/auth/password")
    assert page.status_code == 200 and "Current password" in page.get_data(as_text=True)
    wrong = client.post("/auth/password", data={
        "current": "not my password", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD,
        "csrf_token": csrf_from(client, "/auth/password")})
    assert wrong.status_code == 400
    assert "not your current password" in wrong.get_data(as_text=True)
    assert signed_in(session_copy)
    done = client.post("/auth/password", data={
        "current": DEFAULT_PASSWORD, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD,
        "csrf_token": csrf_from(client, "/auth/password")})
    assert done.status_code == 302
    assert signed_in(client), "the browser that changed the password stays signed in"
    assert not signed_in(session_copy)
    assert not signed_in(remember_copy)


def test_password_reset_ends_every_session(app, client, make_user, outbox):
    import email
    import re

    user = make_user(email="reset-me@example.com")
    sign_in(client, user, remember=True)
    session_copy, _ = copy_to_new_client(app, client, "session")
    remember_copy, _ = copy_to_new_client(app, client, REMEMBER_COOKIE)
    stranger = app.test_client()
    stranger.post("/auth/forgot", data={"email": user.email,
                                        "csrf_token": csrf_from(stranger, "/auth/forgot")})
    body = email.message_from_bytes(next(outbox.glob("*.eml")).read_bytes()).get_payload(
        decode=True).decode()
    link = re.search(r"http://localhost(/auth/reset/\S+)", body)[1]
    stranger.post(link, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD,
                              "csrf_token": csrf_from(stranger, link)})
    assert not signed_in(session_copy)
    assert not signed_in(remember_copy)
    assert not signed_in(client)


def test_admin_disabling_a_user_ends_their_sessions(app, client, make_user):
    customer = make_user()
    sign_in(client, customer, remember=True)
    remember_copy, _ = copy_to_new_client(app, client, REMEMBER_COOKIE)
    admin_client = app.test_client()
    sign_in(admin_client, make_user(Role.ADMIN))
    token = csrf_from(admin_client, f"/admin/accounts/{customer.account_id}")
    response = admin_client.post(f"/admin/users/{customer.id}/active",
                                 data={"active": "0", "csrf_token": token})
    assert response.status_code in (302, 303)
    assert not signed_in(client)
    assert not signed_in(remember_copy)


def test_staff_sessions_end_after_30_idle_minutes_and_12_hours(app, client, make_user):
    sign_in(client, make_user(Role.ADMIN))
    assert client.get("/admin/").status_code == 200
    with client.session_transaction() as session:
        session[SEEN_AT] = int(time.time()) - 29 * 60
    assert client.get("/admin/").status_code == 200
    with client.session_transaction() as session:
        session[SEEN_AT] = int(time.time()) - 31 * 60
    idle = client.get("/admin/")
    assert idle.status_code == 302 and idle.headers["Location"].startswith("/auth/login")
    assert client.get("/admin/").status_code == 302
    sign_in(client, make_user(Role.AUDITOR))
    with client.session_transaction() as session:
        session[SIGNED_IN_AT] = int(time.time()) - 12 * 3600 - 1
    # Active all along (seen just now), yet past the absolute limit.
    assert client.get("/admin/").status_code == 302


def test_customer_sessions_have_no_idle_limit(client, make_user):
    sign_in(client, make_user())
    with client.session_transaction() as session:
        session[SEEN_AT] = int(time.time()) - 3 * 3600
    assert signed_in(client)
