"""The health endpoint, error pages and response headers."""
from __future__ import annotations

import pytest

from portal import create_app


def test_health_reports_ok(client):
    response = client.get("/health")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok"
    assert body["database"] == "ok"
    assert body["stripe_mode"] == "sandbox"
    assert body["version"] not in ("", None)
    assert isinstance(body["uptime_s"], float | int) and body["uptime_s"] >= 0


def test_health_is_503_when_database_does_not_answer(tmp_path):
    unreachable = tmp_path / "no-such-folder" / "portal.db"
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{unreachable}", "TESTING": True,
                      "PORTAL_ENV": "testing", "SECRET_KEY": "x"})
    response = app.test_client().get("/health")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "unavailable"
    assert body["database"].startswith("error")


@pytest.mark.parametrize(
    ("key", "mode"),
    [("sk_test_abc", "test"), ("sk_live_abc", "live"), ("rk_live_abc", "live")],
)
def test_health_names_stripe_mode(tmp_path, key, mode):
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'p.db'}",
                      "TESTING": True, "SECRET_KEY": "x", "STRIPE_SECRET_KEY": key,
                      "STRIPE_PUBLISHABLE_KEY": "pk_" + key[3:],
                      "STRIPE_WEBHOOK_SECRET": "whsec_x"})
    assert app.test_client().get("/health").get_json()["stripe_mode"] == mode


def test_real_keys_without_webhook_secret_refuse_to_start(tmp_path):
    with pytest.raises(RuntimeError, match="STRIPE_WEBHOOK_SECRET"):
        create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'p.db'}",
                    "SECRET_KEY": "x", "STRIPE_SECRET_KEY": "sk_test_abc",
                    "STRIPE_PUBLISHABLE_KEY": "pk_test_abc"})


def test_not_found_page_has_no_trace(client):
    response = client.get("/no/such/page")
    assert response.status_code == 404
    page = response.get_data(as_text=True)
    assert "Not found" in page and "Traceback" not in page


def test_method_not_allowed_page(client):
    response = client.delete("/auth/login")
    assert response.status_code == 405
    assert "Method not allowed" in response.get_data(as_text=True)


def test_request_too_large_page(client):
    response = client.post("/auth/login", data={"email": "x" * (2 * 1024 * 1024)})
    assert response.status_code == 413
    assert "Too large" in response.get_data(as_text=True)


def test_unexpected_error_page_hides_details(app):
    # A route added here only, so the error comes from a real request through the handlers.
    @app.route("/raise-for-test")
    def explode():
        raise RuntimeError("secret internals")

    app.config["PROPAGATE_EXCEPTIONS"] = False
    response = app.test_client().get("/raise-for-test")
    assert response.status_code == 500
    page = response.get_data(as_text=True)
    assert "Something went wrong" in page
    assert "secret internals" not in page and "Traceback" not in page


def test_json_clients_get_json_errors(client):
    response = client.get("/nowhere", headers={"Accept": "application/json"})
    assert response.status_code == 404
    assert response.get_json()["error"]["status"] == 404


def test_security_headers(client):
    response = client.get("/auth/login")
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_pages_fit_phone_width(client):
    page = client.get("/auth/login").get_data(as_text=True)
    assert 'name="viewport" content="width=device-width, initial-scale=1"' in page
    assert "/static/vendor/htmx/htmx.min.js" in page
    assert "https://" not in page.split("<body")[0]


def test_vendored_htmx_is_served(client):
    response = client.get("/static/vendor/htmx/htmx.min.js")
    assert response.status_code == 200
    assert b"htmx" in response.data[:200]
    response.close()
