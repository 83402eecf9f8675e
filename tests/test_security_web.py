"""Issue 10, findings 3, 7, 8, 9, 10: trusted links, identical answers, password and name
rules, headers and file modes, plain-words Stripe errors."""
from __future__ import annotations

import email
import logging
import re
import stat

import pytest

from portal import create_app
from portal.extensions import db
from portal.models import Account, User
from tests.helpers import csrf_from, free_port


def messages(outbox):
    """Return the messages written to the outbox, oldest first."""
    return [email.message_from_bytes(path.read_bytes())
            for path in sorted(outbox.glob("*.eml"), key=lambda p: p.stat().st_mtime)]


def body_of(message) -> str:
    """Return the text part of a message."""
    part = message.get_body(("plain",)) if hasattr(message, "get_body") else message
    return part.get_payload(decode=True).decode()


def test_forged_host_is_refused_and_reset_links_use_the_base_url(app, client, make_user,
                                                                  outbox):
    make_user(email="victim@example.com")
    token = csrf_from(client, "/auth/forgot")
    # As reported: POST /auth/forgot with Host: evil.example. TRUSTED_HOSTS turns it away...
    forged = client.post("/auth/forgot", data={"email": "victim@example.com",
                                               "csrf_token": token},
                         headers={"Host": "evil.example"})
    assert forged.status_code == 400
    assert messages(outbox) == []
    # ...and even where a proxy lets any Host through, the link names PORTAL_BASE_URL.
    app.config["TRUSTED_HOSTS"] = None
    app.config["PORTAL_BASE_URL"] = "https://billing.example"
    # The browser's cookie goes along, as it would to the attacker's Host through a proxy.
    client.set_cookie("session", client.get_cookie("session").value, domain="evil.example")
    forged = client.post("/auth/forgot", data={"email": "victim@example.com",
                                               "csrf_token": token},
                         base_url="http://evil.example")
    assert forged.status_code == 302
    text = body_of(messages(outbox)[0])
    assert "evil.example" not in text
    assert re.search(r"https://billing\.example/auth/reset/\S+", text)


def test_production_needs_portal_base_url_and_trusts_only_its_host(tmp_path, monkeypatch):
    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path))
    monkeypatch.delenv("PORTAL_BASE_URL")
    with pytest.raises(RuntimeError, match="PORTAL_BASE_URL"):
        create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"})
    monkeypatch.setenv("PORTAL_BASE_URL", "https://billing.example/")
    app = create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"})
    assert app.config["PORTAL_BASE_URL"] == "https://billing.example"
    assert app.config["TRUSTED_HOSTS"] == ["billing.example"]
    assert app.test_client().get("/health", headers={"Host": "evil.example"}).status_code == 400
    assert app.test_client().get(
        "/health", base_url="https://billing.example").status_code == 200


def test_registration_answers_the_same_for_new_and_taken_emails(client, make_user, outbox):
    make_user(email="taken@example.com", account_name="Original Ltd")

    def register(address):
        answer = client.post("/auth/register", data={
            "account_name": "Acme Ltd", "email": address, "password": "a long password",
            "confirm": "a long password", "csrf_token": csrf_from(client, "/auth/register")})
        page = client.get(answer.headers["Location"])
        flashes = re.findall(r'<li class="flash[^"]*">([^<]*)</li>', page.get_data(as_text=True))
        return answer.status_code, answer.headers["Location"], flashes

    assert register("taken@example.com") == register("fresh@example.com")
    sent = {m["To"]: m["Subject"] for m in messages(outbox)}
    assert sent["taken@example.com"].startswith("Someone tried")
    assert sent["fresh@example.com"] == "Your billing portal account is ready"
    taken = db.session.scalar(db.select(User).where(User.email == "taken@example.com"))
    assert taken.account.name == "Original Ltd"


def test_forgot_password_answers_the_same_and_queues_the_mail(app, client, make_user, outbox):
    from portal.models import QueuedMail

    make_user(email="known@example.com")
    app.config["MAIL_DELIVERY"] = "manual"  # proves the request itself never sends

    def ask(address):
        answer = client.post("/auth/forgot", data={
            "email": address, "csrf_token": csrf_from(client, "/auth/forgot")})
        page = client.get(answer.headers["Location"]).get_data(as_text=True)
        return answer.status_code, answer.headers["Location"], re.findall(
            r'<li class="flash[^"]*">([^<]*)</li>', page)

    assert ask("known@example.com") == ask("unknown@example.com")
    assert messages(outbox) == []
    queued = db.session.scalars(db.select(QueuedMail)).all()
    assert [(row.to, row.status) for row in queued] == [("known@example.com", "queued")]


@pytest.mark.parametrize(("password", "message"), [
    ("a" * 10, "Use between 12 and 128 characters."),
    ("a" * 12, "too easy to guess"),
    ("password1234", "most common passwords"),
    ("qwertyuiopas", "too easy to guess"),
    ("x" * 129, "Use between 12 and 128 characters."),
])
def test_weak_passwords_are_refused(client, password, message):
    response = client.post("/auth/register", data={
        "account_name": "Acme", "email": "weak@example.com", "password": password,
        "confirm": password, "csrf_token": csrf_from(client, "/auth/register")})
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert db.session.scalar(db.select(db.func.count(User.id))) == 0


def test_long_unicode_passphrases_need_no_composition_rules(client):
    response = client.post("/auth/register", data={
        "account_name": "Acme", "email": "poet@example.com",
        "password": "grüne äpfel fallen leise", "confirm": "grüne äpfel fallen leise",
        "csrf_token": csrf_from(client, "/auth/register")})
    assert response.status_code == 302


@pytest.mark.parametrize("name", ["Evil\x00Corp", "Acme\u202egnp.exe", "Tab\tName",
                                  "Iso\u2066late"])
def test_names_with_control_or_bidi_characters_are_refused(client, name):
    response = client.post("/auth/register", data={
        "account_name": name, "email": "names@example.com", "password": "a long password",
        "confirm": "a long password", "csrf_token": csrf_from(client, "/auth/register")})
    assert response.status_code == 400
    assert "Names cannot contain" in response.get_data(as_text=True)
    assert db.session.scalar(db.select(db.func.count(Account.id))) == 0


def test_signed_in_pages_are_not_stored_and_favicon_exists(client, make_user, login):
    anonymous = client.get("/auth/login")
    assert "no-store" not in anonymous.headers.get("Cache-Control", "")
    assert "Strict-Transport-Security" not in anonymous.headers  # plain-http testing
    icon = client.get("/favicon.ico")
    assert icon.status_code == 200 and icon.mimetype == "image/vnd.microsoft.icon"
    assert 'rel="icon"' in anonymous.get_data(as_text=True)
    login(make_user())
    for path in ("/billing/", "/billing/plans", "/billing/payment-methods", "/auth/password"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert response.headers["Cache-Control"] == "no-store", path


def test_production_sends_hsts_and_creates_private_files(tmp_path, monkeypatch):
    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("PORTAL_BASE_URL", "https://billing.example")
    app = create_app()
    response = app.test_client().get("/health", base_url="https://billing.example")
    assert response.headers["Strict-Transport-Security"].startswith("max-age=31536000")
    for name in ("portal.db", "secret_key"):
        mode = stat.S_IMODE((tmp_path / name).stat().st_mode)
        assert mode == 0o600, f"{name} is {oct(mode)}"
    with app.app_context():
        from portal.services.mail import send_mail

        send_mail("someone@example.com", "Private", "a reset link")
    outbox = tmp_path / "outbox"
    assert stat.S_IMODE(outbox.stat().st_mode) == 0o700
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in outbox.glob("*.eml"))
    with app.app_context():
        db.engine.dispose()


def test_stripe_outage_is_told_in_plain_words_and_both_card_routes_say_503(
        database_url, tmp_path, monkeypatch, make_user, caplog):
    closed = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path))
    down = create_app({
        "SQLALCHEMY_DATABASE_URI": database_url, "TESTING": True, "PORTAL_ENV": "testing",
        "SECRET_KEY": "x", "STRIPE_SECRET_KEY": "sk_test_down", "MAIL_DELIVERY": "inline",
        "STRIPE_PUBLISHABLE_KEY": "pk_test_down", "STRIPE_WEBHOOK_SECRET": "whsec_down",
        "STRIPE_API_BASE": closed, "PORTAL_BASE_URL": "http://localhost"})
    user = make_user()
    client = down.test_client()
    token = csrf_from(client, "/auth/login")
    client.post("/auth/login", data={"email": user.email, "password": "correct horse battery",
                                     "csrf_token": token})
    token = csrf_from(client, "/billing/payment-methods")
    with caplog.at_level(logging.WARNING):
        setup = client.post("/billing/payment-methods/setup-intent",
                            headers={"X-CSRFToken": token})
        confirm = client.post("/billing/payment-methods/confirm", json={"setup_intent": "seti_1"},
                              headers={"X-CSRFToken": token})
    for response in (setup, confirm):
        # Nothing reached Stripe (connection refused): the customer may simply try again.
        assert response.status_code == 503
        message = response.get_json()["error"]
        assert message.startswith("Stripe, our payment provider, is not answering")
        assert "nothing was changed or charged" in message
        for internal in ("stripe.com", "HTTPConnectionPool", "Network error", "127.0.0.1"):
            assert internal not in message
    assert "APIConnectionError" in caplog.text
    with down.app_context():
        db.engine.dispose()


def test_stripe_refusal_logs_its_request_id_and_quotes_it(app, client, stripe_api, make_user, login,
                                                          caplog):
    login(make_user())
    token = csrf_from(client, "/billing/payment-methods")
    client.post("/billing/payment-methods/setup-intent", headers={"X-CSRFToken": token})
    with caplog.at_level(logging.WARNING):
        response = client.post("/billing/payment-methods/confirm",
                               json={"setup_intent": "seti_doesnotexist"},
                               headers={"X-CSRFToken": token})
    assert response.status_code == 502
    message = response.get_json()["error"]
    request_id = re.search(r"reference (req_\w+)", message)[1]
    assert request_id in caplog.text
    assert "No such" not in message  # Stripe's own wording stays in the log
