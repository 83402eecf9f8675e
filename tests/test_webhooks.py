"""Webhook intake: signatures, storage once, the handler table, failures and retries."""
from __future__ import annotations

import hashlib
import hmac
import json
import time

import pytest

from portal.extensions import db
from portal.models import Account, WebhookEvent
from portal.services.stripe_client import webhook_secret
from portal.services.webhooks import HANDLERS
from tests.factories import make_account


def sign(body: bytes, secret: str, timestamp: int | None = None) -> str:
    """Return a Stripe-Signature header for `body` (t=..., v1=HMAC-SHA256 of 't.body')."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def event_body(event_type: str, obj: dict, *, event_id: str, created: int) -> bytes:
    """Return a Stripe event JSON body carrying `obj`."""
    return json.dumps({
        "id": event_id, "object": "event", "api_version": "2026-10-28.endive",
        "created": created, "livemode": False, "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": event_type, "data": {"object": obj},
    }).encode()


def post_event(client, app, body: bytes, signature: str | None = "sign"):
    """POST a webhook as Stripe does."""
    headers = {"Content-Type": "application/json"}
    if signature == "sign":
        signature = sign(body, webhook_secret())
    if signature is not None:
        headers["Stripe-Signature"] = signature
    return client.post("/webhooks/stripe", data=body, headers=headers)


def customer_object(customer_id: str, default_pm: str | None = None) -> dict:
    """Return a customer object shaped like Stripe's."""
    return {"id": customer_id, "object": "customer", "created": 1_700_000_000,
            "invoice_settings": {"default_payment_method": default_pm}, "metadata": {}}


def stored_events() -> int:
    """Return how many webhook events are stored."""
    return db.session.scalar(db.select(db.func.count(WebhookEvent.id)))


@pytest.mark.parametrize(
    "signature",
    [None, "garbage", "t=1,v1=00", "sign-with-wrong-secret", "expired"],
)
def test_bad_signatures_are_refused_and_nothing_is_stored(client, app, signature):
    body = event_body("customer.updated", customer_object("cus_x"), event_id="evt_bad",
                      created=1_700_000_000)
    if signature == "sign-with-wrong-secret":
        signature = sign(body, "whsec_not_the_right_one")
    elif signature == "expired":
        signature = sign(body, webhook_secret(), int(time.time()) - 600)
    response = post_event(client, app, body, signature)
    assert response.status_code == 400
    assert stored_events() == 0


def test_tampered_body_is_refused(client, app):
    body = event_body("customer.updated", customer_object("cus_x"), event_id="evt_t",
                      created=1_700_000_000)
    signature = sign(body, webhook_secret())
    response = post_event(client, app, body.replace(b"cus_x", b"cus_y"), signature)
    assert response.status_code == 400
    assert stored_events() == 0


def test_not_json_is_a_400(client, app):
    response = post_event(client, app, b"not json at all")
    assert response.status_code == 400


def test_event_is_stored_processed_and_duplicates_ignored(client, app, make_user):
    user = make_user(account=make_account(stripe_customer_id="cus_dup"))
    body = event_body("customer.updated", customer_object("cus_dup", "pm_1"),
                      event_id="evt_once", created=1_700_000_100)
    first = post_event(client, app, body)
    assert first.status_code == 200 and first.get_json()["status"] == "processed"
    assert db.session.get(Account, user.account_id).default_payment_method_id == "pm_1"
    # The same event again, with a newer payload: acknowledged, not applied a second time.
    again = post_event(client, app, body)
    assert again.status_code == 200 and again.get_json()["duplicate"] is True
    assert stored_events() == 1
    row = db.session.scalar(db.select(WebhookEvent))
    assert (row.status, row.attempts, row.type) == ("processed", 1, "customer.updated")


def test_unknown_event_types_are_stored_and_ignored(client, app):
    body = event_body("issuing_card.created", {"id": "ic_1", "object": "issuing.card"},
                      event_id="evt_unknown", created=1_700_000_000)
    response = post_event(client, app, body)
    assert response.status_code == 200
    assert db.session.scalar(db.select(WebhookEvent.status)) == "ignored"


def test_every_handled_type_has_a_handler_listed_once():
    expected = {
        "checkout.session.completed", "customer.subscription.created",
        "customer.subscription.updated", "customer.subscription.deleted",
        "customer.subscription.trial_will_end", "invoice.created", "invoice.finalized",
        "invoice.paid", "invoice.payment_failed", "invoice.payment_action_required",
        "invoice.voided", "invoice.marked_uncollectible", "payment_intent.succeeded",
        "payment_intent.payment_failed", "payment_method.attached", "payment_method.detached",
        "customer.updated", "charge.refunded", "refund.created", "refund.updated",
        "customer.tax_id.created", "customer.tax_id.deleted", "invoice.upcoming",
        "refund.failed", "charge.refund.updated",
        "billing.credit_grant.created", "billing.credit_balance_transaction.created",
        "customer.deleted",
    }
    # charge.succeeded/failed are handled too: they spare payment_intent.* a charge fetch.
    assert set(HANDLERS) == expected | {"charge.succeeded", "charge.failed"}


@pytest.fixture
def unreachable_stripe_app(app, database_url, tmp_path):
    """Return a second portal on the same database whose Stripe cannot be reached."""
    from portal import create_app
    from tests.helpers import free_port

    down = create_app({
        "SQLALCHEMY_DATABASE_URI": database_url, "TESTING": True, "PORTAL_ENV": "testing",
        "SECRET_KEY": "x", "STRIPE_SECRET_KEY": "sk_test_down",
        "STRIPE_PUBLISHABLE_KEY": "pk_test_down", "STRIPE_WEBHOOK_SECRET": "whsec_down",
        "STRIPE_API_BASE": f"http://127.0.0.1:{free_port()}", "WEBHOOK_PROCESSING": "inline",
    })
    yield down
    with down.app_context():
        db.engine.dispose()


def paid_charge(stripe_api, account) -> tuple[str, dict]:
    """Pay 20.00 USD in the sandbox for the account; return the charge id and intent."""
    from portal.services.customers import ensure_stripe_customer

    customer_id = ensure_stripe_customer(account)
    intent = stripe_api.v1.payment_intents.create(params={
        "amount": 2000, "currency": "usd", "customer": customer_id,
        "payment_method": "pm_card_visa", "confirm": True, "off_session": True})
    return intent.latest_charge, intent.to_dict()


def test_failed_event_is_kept_and_retried_from_the_command_line(
        app, stripe_api, make_user, unreachable_stripe_app):
    from portal.models import Charge

    account = make_user().account
    charge_id, intent = paid_charge(stripe_api, account)
    body = event_body("payment_intent.succeeded", intent, event_id="evt_retry",
                      created=int(time.time()))
    down_client = unreachable_stripe_app.test_client()
    response = down_client.post("/webhooks/stripe", data=body, headers={
        "Stripe-Signature": sign(body, "whsec_down"), "Content-Type": "application/json"})
    assert response.status_code == 200
    assert response.get_json()["status"] == "failed"
    row = db.session.scalar(db.select(WebhookEvent))
    assert row.status == "failed" and row.attempts == 1 and "APIConnectionError" in row.last_error
    result = app.test_cli_runner().invoke(args=["billing", "retry-events"])
    assert result.exit_code == 0 and "processed: 1" in result.output
    db.session.refresh(row)
    assert (row.status, row.attempts, row.last_error) == ("processed", 2, None)
    charge = db.session.scalar(db.select(Charge))
    assert (charge.stripe_charge_id, charge.amount, charge.account_id) == (charge_id, 2000,
                                                                          account.id)


def test_admin_retries_failed_events_with_audit(app, client, stripe_api, make_user, login,
                                                unreachable_stripe_app):
    from portal.models import AuditEntry, Role
    from tests.helpers import csrf_from

    account = make_user().account
    _charge_id, intent = paid_charge(stripe_api, account)
    body = event_body("payment_intent.succeeded", intent, event_id="evt_admin_retry",
                      created=int(time.time()))
    unreachable_stripe_app.test_client().post("/webhooks/stripe", data=body, headers={
        "Stripe-Signature": sign(body, "whsec_down"), "Content-Type": "application/json"})
    login(make_user(Role.ADMIN))
    page = client.get("/admin/events").get_data(as_text=True)
    assert "evt_admin_retry" in page and "APIConnectionError" in page
    response = client.post("/admin/events/retry",
                           data={"csrf_token": csrf_from(client, "/admin/events")})
    assert response.status_code == 303
    assert db.session.scalar(db.select(WebhookEvent.status)) == "processed"
    entry = db.session.scalar(db.select(AuditEntry).where(AuditEntry.action != "staff.signed_in"))
    assert entry.action == "webhook_events.retried" and entry.details == {"processed": 1}


def test_events_are_processed_by_rq_workers_when_redis_is_set(app, client, make_user,
                                                             monkeypatch, database_url):
    import os

    from rq import SimpleWorker

    from portal.services.jobs import event_queue
    from portal.worker import close_worker_apps
    from tests.helpers import skip_or_fail

    url = os.environ.get("TEST_REDIS_URL")
    if not url:
        skip_or_fail("set TEST_REDIS_URL=redis://127.0.0.1:6379/5 to test RQ processing",
                     "REQUIRE_REDIS")
    app.config.update(REDIS_URL=url, WEBHOOK_PROCESSING="rq")
    # The worker builds its own app from the environment, as a deployed worker would.
    monkeypatch.setenv("DATABASE_URL", database_url)
    queue = event_queue(app.config)
    queue.empty()
    user = make_user(account=make_account(stripe_customer_id="cus_rq"))
    body = event_body("customer.updated", customer_object("cus_rq", "pm_rq"),
                      event_id="evt_rq", created=1_700_000_000)
    response = post_event(client, app, body)
    assert response.get_json()["status"] == "queued"
    assert db.session.scalar(db.select(WebhookEvent.status)) == "pending"
    try:
        SimpleWorker([queue], connection=queue.connection).work(burst=True)
    finally:
        close_worker_apps()
    db.session.expire_all()
    assert db.session.scalar(db.select(WebhookEvent.status)) == "processed"
    assert db.session.get(Account, user.account_id).default_payment_method_id == "pm_rq"
    queue.connection.close()


@pytest.mark.parametrize("body", [b"{}", b"[]", b'{"id": "evt_x"}', b'"text"'])
def test_signed_json_that_is_not_an_event_is_a_400(client, app, body):
    response = post_event(client, app, body)
    assert response.status_code == 400
    assert stored_events() == 0
