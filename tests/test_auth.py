"""Registration, sign-in, sign-out, password resets, CSRF and rate limits."""
from __future__ import annotations

import email
import re

import pytest

from portal.auth.views import safe_next_path
from portal.extensions import db
from portal.models import Account, Role, User
from tests.factories import DEFAULT_PASSWORD
from tests.helpers import csrf_from


def register(client, email_address="new@example.com", password="a long password", **extra):
    """Send the registration form."""
    data = {
        "account_name": "Acme Ltd",
        "email": email_address,
        "password": password,
        "confirm": password,
        "csrf_token": csrf_from(client, "/auth/register"),
    }
    data.update(extra)
    return client.post("/auth/register", data=data)


def test_register_creates_account_with_owner_who_then_signs_in(client, outbox):
    response = register(client, "Owner@Example.com")
    assert response.status_code == 302
    # Not signed in yet: the answer must equal the one for a taken email.
    assert response.headers["Location"] == "/auth/login"
    user = db.session.scalar(db.select(User).where(User.email == "owner@example.com"))
    assert user.role == Role.CUSTOMER
    assert user.account.name == "Acme Ltd"
    assert user.password_hash.startswith("$argon2id$")
    welcome = [email.message_from_bytes(path.read_bytes()) for path in outbox.glob("*.eml")]
    assert [m["To"] for m in welcome] == ["owner@example.com"]
    assert "ready" in welcome[0]["Subject"]
    client.post("/auth/login", data={"email": "owner@example.com", "password": "a long password",
                                     "csrf_token": csrf_from(client, "/auth/login")})
    dashboard = client.get("/billing/")
    assert dashboard.status_code == 200
    assert "Billing for Acme Ltd" in dashboard.get_data(as_text=True)


def test_register_with_taken_email_changes_nothing_and_mails_the_owner(client, make_user,
                                                                       outbox):
    owner = make_user(email="taken@example.com")
    response = register(client, "TAKEN@example.com")
    assert response.status_code == 302
    assert response.headers["Location"] == "/auth/login"
    assert db.session.scalar(db.select(db.func.count(Account.id))) == 1
    db.session.refresh(owner)
    assert owner.password_hash != "" and owner.account.name != "Acme Ltd"
    messages = [email.message_from_bytes(path.read_bytes()) for path in outbox.glob("*.eml")]
    assert [m["To"] for m in messages] == ["taken@example.com"]
    assert "tried to create" in messages[0]["Subject"]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("password", "short", "Use between 12 and 128 characters."),
        ("confirm", "something else entirely", "Passwords do not match."),
        ("email", "not-an-email", "Invalid email address."),
        ("account_name", "", "This field is required."),
    ],
)
def test_register_shows_inline_errors(client, field, value, message):
    response = register(client, **{field: value})
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert db.session.scalar(db.select(db.func.count(User.id))) == 0


def test_login_logout_round_trip(client, make_user, login):
    user = make_user()
    login(user)
    assert client.get("/billing/").status_code == 200
    response = client.post("/auth/logout", data={"csrf_token": csrf_from(client, "/billing/")})
    assert response.status_code == 302
    assert client.get("/billing/").status_code == 302


def test_login_with_wrong_password_is_refused(client, make_user):
    user = make_user()
    response = client.post(
        "/auth/login",
        data={"email": user.email, "password": "wrong password!",
              "csrf_token": csrf_from(client, "/auth/login")},
    )
    assert response.status_code == 400
    assert "Email or password is not right." in response.get_data(as_text=True)
    assert client.get("/billing/").status_code == 302


def test_disabled_user_cannot_sign_in(client, make_user):
    user = make_user(active=False)
    response = client.post(
        "/auth/login",
        data={"email": user.email, "password": DEFAULT_PASSWORD,
              "csrf_token": csrf_from(client, "/auth/login")},
    )
    assert response.status_code == 400


def test_disabled_user_is_told_so_only_after_the_right_password(client, make_user):
    from portal.auth.views import DISABLED_MESSAGE

    user = make_user(active=False)
    token = csrf_from(client, "/auth/login")
    wrong = client.post("/auth/login", data={"email": user.email, "password": "wrong password!",
                                             "csrf_token": token})
    page = wrong.get_data(as_text=True)
    assert wrong.status_code == 400
    assert "Email or password is not right." in page and "disabled" not in page
    right = client.post("/auth/login", data={"email": user.email, "password": DEFAULT_PASSWORD,
                                             "csrf_token": token})
    page = right.get_data(as_text=True)
    assert right.status_code == 400
    assert DISABLED_MESSAGE.replace("'", "&#39;") in page
    assert "Email or password is not right." not in page
    assert client.get("/billing/").status_code == 302
    db.session.refresh(user)
    assert user.last_login_at is None


def test_first_sign_in_after_registering_is_shown_to_staff(client, make_user, login):
    """Registration ends at the sign-in page; that first sign-in is what staff then see."""
    from datetime import UTC, datetime, timedelta

    assert register(client, "first@example.com").status_code == 302
    user = db.session.scalar(db.select(User).where(User.email == "first@example.com"))
    assert user.last_login_at is None
    before = datetime.now(UTC)
    login(user, password="a long password")
    db.session.refresh(user)
    assert user.last_login_at is not None
    assert before - timedelta(seconds=1) <= user.last_login_at <= datetime.now(UTC)
    client.post("/auth/logout", data={"csrf_token": csrf_from(client, "/billing/")})
    login(make_user(Role.ADMIN))
    page = client.get(f"/admin/accounts/{user.account_id}").get_data(as_text=True)
    row = re.search(r"<td>first@example.com</td>.*?</tr>", page, re.S).group(0)
    assert "never" not in row and "UTC" in row


def test_logout_needs_post_with_csrf(client, make_user, login):
    login(make_user())
    assert client.get("/auth/logout").status_code == 405
    assert client.post("/auth/logout").status_code == 400
    assert client.get("/billing/").status_code == 200


def test_form_without_csrf_token_is_rejected(client):
    response = client.post("/auth/login", data={"email": "a@example.com", "password": "x" * 12})
    assert response.status_code == 400
    assert "The form expired" in response.get_data(as_text=True)


def test_login_follows_same_site_next_only(client, make_user):
    user = make_user()
    data = {"email": user.email, "password": DEFAULT_PASSWORD}
    data["csrf_token"] = csrf_from(client, "/auth/login")
    response = client.post("/auth/login?next=//evil.example/steal", data=data)
    assert response.headers["Location"] == "/billing/"
    client.post("/auth/logout", data={"csrf_token": csrf_from(client, "/billing/")})
    data["csrf_token"] = csrf_from(client, "/auth/login")
    response = client.post("/auth/login?next=/billing/plans", data=data)
    assert response.headers["Location"] == "/billing/plans"


@pytest.mark.parametrize(
    ("target", "allowed"),
    [
        ("/billing/", "/billing/"),
        ("/billing/plans?interval=year", "/billing/plans?interval=year"),
        ("https://evil.example/", None),
        ("//evil.example/", None),
        ("/\\evil.example", None),
        ("javascript:alert(1)", None),
        ("billing", None),
        ("/ok\r\nSet-Cookie: x=1", None),
        ("", None),
    ],
)
def test_safe_next_path(target, allowed):
    assert safe_next_path(target) == allowed


def read_reset_link(outbox) -> str:
    """Return the reset link from the only message in the outbox."""
    messages = sorted(outbox.glob("*.eml"))
    assert len(messages) == 1
    message = email.message_from_bytes(messages[0].read_bytes())
    body = message.get_payload(decode=True).decode()
    match = re.search(r"http://localhost(/auth/reset/\S+)", body)
    assert match, body
    return match.group(1)


def request_reset(client, address):
    """Send the forgotten-password form."""
    return client.post(
        "/auth/forgot", data={"email": address, "csrf_token": csrf_from(client, "/auth/forgot")}
    )


def test_password_reset_link_works_once(client, make_user, outbox):
    user = make_user(email="forgetful@example.com")
    response = request_reset(client, "Forgetful@example.com")
    assert response.status_code == 302
    link = read_reset_link(outbox)
    new_password = "a brand new password"
    response = client.post(
        link, data={"password": new_password, "confirm": new_password,
                    "csrf_token": csrf_from(client, link)},
    )
    assert response.headers["Location"] == "/auth/login"
    db.session.refresh(user)
    # The same link again: refused, because the password it was issued for is gone.
    again = client.get(link)
    assert again.status_code == 302 and again.headers["Location"] == "/auth/forgot"
    token = csrf_from(client, "/auth/login")
    ok = client.post("/auth/login", data={"email": user.email, "password": new_password,
                                          "csrf_token": token})
    assert ok.status_code == 302


def test_password_reset_link_expires(client, app, make_user, outbox):
    make_user(email="slow@example.com")
    app.config["PASSWORD_RESET_MAX_AGE_S"] = -1
    request_reset(client, "slow@example.com")
    link = read_reset_link(outbox)
    response = client.get(link)
    assert response.status_code == 302
    assert response.headers["Location"] == "/auth/forgot"


def test_password_reset_for_unknown_email_reveals_nothing(client, outbox):
    response = request_reset(client, "nobody@example.com")
    assert response.status_code == 302
    assert list(outbox.glob("*.eml")) == []


def test_tampered_reset_token_is_refused(client, make_user, outbox):
    make_user(email="victim@example.com")
    request_reset(client, "victim@example.com")
    link = read_reset_link(outbox)
    response = client.get(link[:-3] + "abc")
    assert response.headers["Location"] == "/auth/forgot"


def test_login_is_rate_limited(client, make_user):
    user = make_user()
    token = csrf_from(client, "/auth/login")
    statuses = [
        client.post("/auth/login", data={"email": user.email, "password": "wrong password!",
                                         "csrf_token": token}).status_code
        for _ in range(11)
    ]
    assert statuses[:10] == [400] * 10
    assert statuses[10] == 429
    page = client.post("/auth/login", data={"email": user.email, "password": DEFAULT_PASSWORD,
                                            "csrf_token": token})
    assert page.status_code == 429
    assert "Too many requests" in page.get_data(as_text=True)


def test_session_cookie_flags(client, make_user, login, app):
    response = login(make_user())
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie


def test_rate_limits_are_shared_through_redis_when_configured(app, client, make_user):
    import os

    from tests.helpers import skip_or_fail

    url = os.environ.get("TEST_REDIS_URL")
    if not url:
        skip_or_fail("set TEST_REDIS_URL=redis://127.0.0.1:6379/5 to test Redis-backed limits",
                     "REQUIRE_REDIS")
    import redis

    from portal.extensions import limiter

    assert app.config["RATELIMIT_STORAGE_URI"] == url
    user = make_user()
    token = csrf_from(client, "/auth/login")
    client.post("/auth/login", data={"email": user.email, "password": "wrong password!",
                                     "csrf_token": token})
    with redis.Redis.from_url(url) as connection:
        keys = [key.decode() for key in connection.keys("LIMITS:*auth.login*")]
    assert keys, "no rate-limit counter reached Redis"
    assert limiter.storage.check()
