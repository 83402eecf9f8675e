"""Issue 10, findings 1 and 2: the embedded sandbox is locked to its portal.

Stripe answers an unknown key with 401 and `Invalid API Key provided`
(https://docs.stripe.com/api/authentication) and refuses a Checkout Session whose
success_url/cancel_url is not a valid URL (https://docs.stripe.com/api/checkout/sessions/create).
"""
from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
import stripe as stripe_sdk

from portal import create_app
from portal.extensions import db
from portal.sandbox import create_sandbox_app
from tests.helpers import free_port


@pytest.fixture
def served_portal(app):
    """Serve the test portal (embedded sandbox included) over real HTTP on loopback."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", free_port(), app, threaded=True)
    import threading

    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)


def sdk(key: str, base: str) -> stripe_sdk.StripeClient:
    """Return the official SDK pointed at the portal's /_stripe over real HTTP."""
    return stripe_sdk.StripeClient(key, base_addresses={"api": base + "/_stripe"},
                                   max_network_retries=0)


def test_foreign_keys_get_stripes_401_and_the_portals_own_key_works(app, stripe_api, served_portal,
                                                                    make_user):
    from portal.services.customers import ensure_stripe_customer

    with app.test_request_context("/"):
        ensure_stripe_customer(make_user(account_name="Demo Company").account)
    # As reported: any sk_test_ key listed every customer.
    for foreign in ("sk_test_x", "sk_test_" + "a" * 24, "rk_test_abcdefghijkl"):
        with pytest.raises(stripe_sdk.AuthenticationError) as refused:
            sdk(foreign, served_portal).v1.customers.list()
        assert refused.value.http_status == 401
        assert "Invalid API Key provided" in str(refused.value)
    # ...and cancelled others' subscriptions / re-linked accounts: refused the same way.
    with pytest.raises(stripe_sdk.AuthenticationError):
        sdk("sk_test_x", served_portal).v1.customers.create(
            params={"metadata": {"account_id": "1"}})
    # The publishable key only opens what Stripe.js may call.
    with pytest.raises(stripe_sdk.AuthenticationError):
        sdk(app.config["SANDBOX_PUBLISHABLE_KEY"], served_portal).v1.customers.list()
    own = sdk(app.config["SANDBOX_SECRET_KEY"], served_portal).v1.customers.list()
    assert [c.name for c in own.data] == ["Demo Company"]


def test_generated_keys_and_sandbox_db_are_private(app):
    path = Path(app.instance_path) / "sandbox-keys.json"
    keys = json.loads(path.read_text())
    assert keys["secret"].startswith("sk_test_") and len(keys["secret"]) > 30
    assert keys["secret"] == app.config["SANDBOX_SECRET_KEY"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    sandbox_db = Path(app.extensions["stripe_sandbox"].config["SANDBOX_DB"])
    assert stat.S_IMODE(sandbox_db.stat().st_mode) == 0o600
    # A second start keeps the same pair.
    again = create_app({"SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
                        "TESTING": True, "PORTAL_ENV": "testing", "SANDBOX_DELIVERY": "manual"})
    assert again.config["SANDBOX_SECRET_KEY"] == keys["secret"]
    with again.app_context():
        db.engine.dispose()


@pytest.mark.parametrize(("param", "url"), [
    ("cancel_url", "javascript:fetch('/billing/')"),
    ("cancel_url", "JavaScript:alert(1)"),
    ("success_url", "https://evil.example/"),
    ("success_url", "data:text/html,<script>alert(1)</script>"),
    ("cancel_url", "//evil.example/"),
])
def test_checkout_sessions_refuse_script_and_foreign_redirects(app, stripe_api, param, url):
    params = {"mode": "setup", "currency": "usd", "payment_method_types": ["card"],
              "success_url": "http://localhost/billing/checkout/success",
              "cancel_url": "http://localhost/billing/checkout/cancel"}
    params[param] = url
    with pytest.raises(stripe_sdk.InvalidRequestError) as refused:
        stripe_api.v1.checkout.sessions.create(params=params)
    assert refused.value.http_status == 400
    assert refused.value.param == param
    params[param] = "http://localhost/billing/plans"
    assert stripe_api.v1.checkout.sessions.create(params=params).url


def test_return_urls_of_setup_intents_are_checked(app, stripe_api):
    with pytest.raises(stripe_sdk.InvalidRequestError) as refused:
        stripe_api.v1.setup_intents.create(params={"payment_method_types": ["card"],
                                               "return_url": "javascript:alert(1)",
                                               "payment_method": "pm_card_visa",
                                               "confirm": True})
    assert refused.value.param == "return_url"


def test_sandbox_served_alone_takes_any_test_key_but_still_checks_urls(tmp_path):
    """https://docs.stripe.com/api/checkout/sessions/create (success_url must be a URL)."""
    from werkzeug.serving import make_server

    alone = create_sandbox_app({"SANDBOX_DB": ":memory:", "SANDBOX_DELIVERY": "manual"})
    server = make_server("127.0.0.1", free_port(), alone, threaded=True)
    import threading

    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        client = stripe_sdk.StripeClient(
            "sk_test_anything", base_addresses={"api": f"http://127.0.0.1:{server.server_port}"},
            max_network_retries=0)
        assert client.v1.customers.list().data == []
        base = {"mode": "setup", "currency": "usd", "payment_method_types": ["card"],
                "cancel_url": "https://shop.example/cancel"}
        assert client.v1.checkout.sessions.create(
            params={**base, "success_url": "https://shop.example/ok"}).url
        with pytest.raises(stripe_sdk.InvalidRequestError):
            client.v1.checkout.sessions.create(
                params={**base, "success_url": "javascript:alert(1)"})
    finally:
        server.shutdown()
        thread.join(timeout=5)


def test_sandbox_pages_carry_security_headers(app, client, stripe_api):
    session = stripe_api.v1.checkout.sessions.create(params={
        "mode": "setup", "currency": "usd", "payment_method_types": ["card"],
        "success_url": "http://localhost/ok", "cancel_url": "http://localhost/no"})
    path = session.url.split("localhost", 1)[1]
    for url in (path, "/_stripe/v1/customers", "/_stripe/v3/"):
        response = client.get(url)
        response.close()
        assert response.headers["X-Content-Type-Options"] == "nosniff", url
        assert "default-src 'self'" in response.headers["Content-Security-Policy"], url
    page = client.get(path)
    assert page.status_code == 200
    assert page.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    frame = client.get("/_stripe/v3/elements-inner.html")
    assert "frame-ancestors 'self'" in frame.headers["Content-Security-Policy"]


def test_production_portal_has_no_sandbox_unless_enabled_loudly(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("PORTAL_BASE_URL", "https://billing.example")
    production = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'p.db'}"})
    client = production.test_client()
    response = client.get("/_stripe/v1/customers", base_url="https://billing.example",
                          headers={"Authorization": "Bearer sk_test_x"})
    assert response.status_code == 404
    assert "stripe_sandbox" not in production.extensions
    assert not (tmp_path / "sandbox.db").exists()
    monkeypatch.setenv("SANDBOX_IN_PRODUCTION", "1")
    with caplog.at_level("WARNING"):
        enabled = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'p.db'}"})
    assert "SANDBOX_IN_PRODUCTION" in caplog.text
    assert "stripe_sandbox" in enabled.extensions
    from flask_migrate import upgrade

    with enabled.app_context():
        upgrade(directory=enabled.extensions["migrate"].directory)
    page = enabled.test_client().get("/auth/login", base_url="https://billing.example")
    assert "payments are simulated" in page.get_data(as_text=True)
    for each in (production, enabled):
        with each.app_context():
            db.engine.dispose()
