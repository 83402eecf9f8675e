"""Refunds from the admin account page: step-up, limits, approval, idempotency, failures."""
from __future__ import annotations

import re
import threading
import time

import pytest

from portal.extensions import db
from portal.models import AuditEntry, Charge, QueuedMail, Refund, RefundRequest, Role
from portal.services.refunds import RefundRefused, request_refund
from tests.factories import DEFAULT_PASSWORD
from tests.helpers import csrf_from, customer_with_card, skip_or_fail

TOKEN = re.compile(r'name="form_token"[^>]*value="([^"]+)"')


@pytest.fixture
def paid_charge(app, stripe_api, make_user, deliver_webhooks):
    """Return a builder: a customer's card payment made at the sandbox and mirrored."""

    def build(amount: int = 5000, card: str = "pm_card_visa") -> Charge:
        account = make_user().account
        pm_id = customer_with_card(stripe_api, account, card)
        intent = stripe_api.v1.payment_intents.create(params={
            "amount": amount, "currency": "usd", "customer": account.stripe_customer_id,
            "payment_method": pm_id, "confirm": True, "off_session": True})
        db.session.commit()
        deliver_webhooks()
        charge = db.session.scalar(
            db.select(Charge).where(Charge.stripe_charge_id == intent.latest_charge))
        assert charge is not None and charge.account_id == account.id
        return charge

    return build


@pytest.fixture
def admin(make_user, login):
    """Return a signed-in admin."""
    user = make_user(Role.ADMIN)
    login(user)
    return user


def review(client, charge, amount: str, reason="requested_by_customer", note="Asked by phone"):
    """Post the refund form of the account page; return the confirmation response."""
    token = csrf_from(client, f"/admin/accounts/{charge.account_id}")
    return client.post(f"/admin/charges/{charge.id}/refund/review", data={
        "csrf_token": token, "amount": amount, "reason": reason, "note": note})


def confirm(client, charge, page, amount: int, password: str | None = DEFAULT_PASSWORD,
            reason="requested_by_customer", note="Asked by phone"):
    """Submit the confirmation step shown on `page`."""
    html = page.get_data(as_text=True)
    data = {"csrf_token": re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html).group(1),
            "form_token": TOKEN.search(html).group(1), "amount": str(amount),
            "reason": reason, "note": note}
    if password is not None:
        data["password"] = password
    return client.post(f"/admin/charges/{charge.id}/refund", data=data)


def refund(client, charge, amount_text: str, amount: int, **kwargs):
    """Review then confirm a refund; return the confirmation's response."""
    page = review(client, charge, amount_text)
    assert page.status_code == 200, page.get_data(as_text=True)
    return confirm(client, charge, page, amount, **kwargs)


def records() -> list[RefundRequest]:
    """Return every portal refund record, oldest first."""
    db.session.expire_all()
    return list(db.session.scalars(db.select(RefundRequest).order_by(RefundRequest.id)))


def audit_actions() -> list[str]:
    """Return the audit log's refund actions, oldest first (staff sign-ins left out)."""
    return list(db.session.scalars(db.select(AuditEntry.action).where(
        AuditEntry.action != "staff.signed_in").order_by(AuditEntry.id)))


def test_partial_then_full_refund(app, client, admin, paid_charge, stripe_api, deliver_webhooks):
    charge = paid_charge(5000)
    page = review(client, charge, "20.00")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "$50.00" in html and "We have refunded $20.00 of your payment ($50.00)" in html
    assert confirm(client, charge, page, 2000).status_code == 303
    first = records()[0]
    assert (first.status, first.amount, first.stripe_refund_id is not None) == (
        "succeeded", 2000, True)
    assert "$30.00" in review(client, charge, "1").get_data(as_text=True)
    assert refund(client, charge, "30.00", 3000).status_code == 303
    deliver_webhooks()
    at_stripe = stripe_api.v1.charges.retrieve(charge.stripe_charge_id)
    assert (at_stripe.amount_refunded, at_stripe.refunded) == (5000, True)
    assert sorted(r.amount for r in db.session.scalars(db.select(Refund))) == [2000, 3000]
    assert [r.idempotency_key for r in records()] == [f"refund-{first.id}",
                                                      f"refund-{first.id + 1}"]
    assert audit_actions() == ["refund.requested", "refund.sent"] * 2
    sent = db.session.scalars(db.select(AuditEntry).where(
        AuditEntry.action == "refund.sent")).all()
    assert all(e.stripe_request_id and e.stripe_request_id.startswith("req_") for e in sent)
    assert [(e.amount, e.currency) for e in sent] == [(2000, "usd"), (3000, "usd")]
    mails = db.session.scalars(db.select(QueuedMail)).all()
    assert len([m for m in mails if "refund" in (m.dedupe_key or "")]) == 2
    assert "nothing is left" not in review(client, charge, "0.01").get_data(as_text=True)
    assert review(client, charge, "0.01").status_code == 409


def test_over_refund_is_refused_with_a_message(app, client, admin, paid_charge):
    charge = paid_charge(5000)
    page = review(client, charge, "50.01")
    assert page.status_code == 409
    assert "more than is left to refund" in page.get_data(as_text=True)
    # The confirmation step cannot be forged past the limit either.
    allowed = review(client, charge, "50.00")
    forged = confirm(client, charge, allowed, 5001)
    assert forged.status_code == 409
    assert "more than the $50.00 left to refund" in forged.get_data(as_text=True)
    assert records() == []
    for bad in ("abc", "-5", "0", "1.001", "NaN"):
        assert review(client, charge, bad).status_code == 400, bad


def test_double_submit_refunds_once(app, client, admin, paid_charge, stripe_api):
    charge = paid_charge(5000)
    page = review(client, charge, "10.00")
    assert confirm(client, charge, page, 1000).status_code == 303
    assert confirm(client, charge, page, 1000).status_code == 303
    (record,) = records()
    at_stripe = stripe_api.v1.refunds.list(params={"charge": charge.stripe_charge_id}).data
    assert [r.id for r in at_stripe] == [record.stripe_refund_id]
    # A retry of the Stripe call (a lost response) replays under the record's key.
    replay = stripe_api.v1.refunds.create(
        params={"charge": charge.stripe_charge_id, "amount": 1000,
                "reason": "requested_by_customer",
                "metadata": {"portal_refund_id": str(record.id)}},
        options={"idempotency_key": f"refund-{record.id}"})
    assert replay.id == record.stripe_refund_id
    assert replay.last_response.headers.get("Idempotent-Replayed") == "true"
    assert len(stripe_api.v1.refunds.list(params={"charge": charge.stripe_charge_id}).data) == 1


def test_step_up_is_required_and_expires(app, client, admin, paid_charge):
    charge = paid_charge(5000)
    missing = refund(client, charge, "1.00", 100, password=None)
    assert missing.status_code == 403
    assert "Type your password" in missing.get_data(as_text=True)
    assert refund(client, charge, "1.00", 100, password="wrong password!").status_code == 403
    assert records() == []
    assert refund(client, charge, "1.00", 100).status_code == 303
    # Within 5 minutes no password is asked again.
    page = review(client, charge, "1.00")
    assert 'name="password"' not in page.get_data(as_text=True)
    assert confirm(client, charge, page, 100, password=None).status_code == 303
    # Six minutes later it is.
    with client.session_transaction() as session:
        session["step_up_at"] = time.time() - 6 * 60
    page = review(client, charge, "1.00")
    assert 'name="password"' in page.get_data(as_text=True)
    assert confirm(client, charge, page, 100, password=None).status_code == 403
    assert len(records()) == 2


def test_large_refund_waits_for_a_second_admin(app, client, admin, paid_charge, make_user,
                                               login, stripe_api):
    app.config["REFUND_APPROVAL_THRESHOLD"] = {"usd": 1000}
    charge = paid_charge(5000)
    assert refund(client, charge, "10.00", 1000).status_code == 303  # at the threshold: sent
    assert refund(client, charge, "20.00", 2000).status_code == 303
    held = records()[-1]
    assert held.status == "awaiting_approval" and held.stripe_refund_id is None
    assert len(stripe_api.v1.refunds.list(params={"charge": charge.stripe_charge_id}).data) == 1
    # Held money counts as taken: only $20.00 is left.
    assert "$20.00" in review(client, charge, "1").get_data(as_text=True)
    token = csrf_from(client, f"/admin/accounts/{charge.account_id}")
    own = client.post(f"/admin/refunds/{held.id}/approve",
                      data={"csrf_token": token, "password": DEFAULT_PASSWORD})
    assert own.status_code == 403
    assert "another admin has to approve it" in own.get_data(as_text=True)
    assert records()[-1].status == "awaiting_approval"
    second = make_user(Role.ADMIN)
    client.post("/auth/logout", data={"csrf_token": token})
    login(second)
    token = csrf_from(client, f"/admin/accounts/{charge.account_id}")
    no_password = client.post(f"/admin/refunds/{held.id}/approve", data={"csrf_token": token})
    assert no_password.status_code == 403
    approved = client.post(f"/admin/refunds/{held.id}/approve",
                           data={"csrf_token": token, "password": DEFAULT_PASSWORD})
    assert approved.status_code == 303
    held = records()[-1]
    assert (held.status, held.approved_by_id) == ("succeeded", second.id)
    assert audit_actions()[-2:] == ["refund.approved", "refund.sent"]


def test_failed_refund_is_shown_and_retried(app, client, admin, paid_charge, deliver_webhooks,
                                            stripe_api):
    charge = paid_charge(5000, card="pm_card_refundFail")
    assert refund(client, charge, "15.00", 1500).status_code == 303
    assert records()[0].status == "succeeded"  # Stripe answers succeeded, then fails it
    stripe_api.v1.refunds.retrieve(records()[0].stripe_refund_id)  # time passes at Stripe
    deliver_webhooks()
    failed = records()[0]
    assert failed.status == "failed"
    assert "refund.failed" in audit_actions()
    page = client.get(f"/admin/accounts/{charge.account_id}").get_data(as_text=True)
    assert "failed: Stripe reported the refund as failed." in page
    assert "Try again" in page
    # The failed amount is refundable again, and the retry is a new record with a new key.
    assert "$50.00" in review(client, charge, "1").get_data(as_text=True)
    token = csrf_from(client, f"/admin/accounts/{charge.account_id}")
    retried = client.post(f"/admin/refunds/{failed.id}/retry",
                          data={"csrf_token": token, "form_token": "retry-token-0123456789"})
    assert retried.status_code == 303
    again = records()[-1]
    assert (again.retry_of_id, again.amount, again.status) == (failed.id, 1500, "succeeded")
    assert again.stripe_refund_id != failed.stripe_refund_id
    assert again.idempotency_key == f"refund-{again.id}"


def test_concurrent_refunds_never_exceed_the_charge(app, paid_charge, make_user):
    if db.engine.dialect.name != "postgresql":
        skip_or_fail("concurrent refunds are tested on PostgreSQL: set TEST_DATABASE_URL",
                     "REQUIRE_POSTGRES")
    charge = paid_charge(5000)
    admins = [make_user(Role.ADMIN) for _ in range(2)]
    charge_id, admin_ids = charge.id, [a.id for a in admins]
    db.session.commit()
    barrier = threading.Barrier(8)
    outcomes: list[str] = []

    def refund_in_thread(i: int) -> None:
        with app.app_context(), app.test_request_context("/"):
            from portal.models import User

            admin = db.session.get(User, admin_ids[i % 2])
            barrier.wait()
            try:
                record = request_refund(admin, charge_id, 1500, "duplicate", "race",
                                        f"race-token-{i:04d}-abcdefgh")
                outcomes.append(record.status)
            except RefundRefused:
                outcomes.append("refused")
            finally:
                db.session.remove()

    threads = [threading.Thread(target=refund_in_thread, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["refused"] * 5 + ["succeeded"] * 3
    db.session.expire_all()
    sent = db.session.scalars(db.select(RefundRequest)).all()
    assert sum(r.amount for r in sent) == 4500 <= 5000


def test_wrong_step_up_passwords_are_limited(app, client, admin, paid_charge):
    charge = paid_charge(5000)
    page = review(client, charge, "1.00")
    statuses = [confirm(client, charge, page, 100, password=f"wrong guess {i}").status_code
                for i in range(11)]
    assert statuses == [403] * 10 + [429]
    # The right password is refused too until the hour is over: the guesses were used up.
    assert confirm(client, charge, page, 100).status_code == 429
    assert records() == []


def test_refund_of_a_paid_invoice_names_the_invoice(app, client, admin, make_user, stripe_api,
                                                    deliver_webhooks, outbox):
    account = make_user().account
    customer_with_card(stripe_api, account, "pm_card_visa")
    product = stripe_api.v1.products.create(params={"name": "Pro"})
    price = stripe_api.v1.prices.create(params={
        "product": product.id, "currency": "usd", "unit_amount": 4900,
        "recurring": {"interval": "month"}})
    subscription = stripe_api.v1.subscriptions.create(params={
        "customer": account.stripe_customer_id, "items": [{"price": price.id}]})
    db.session.commit()
    deliver_webhooks()
    invoice = stripe_api.v1.invoices.retrieve(subscription.latest_invoice)
    charge = db.session.scalar(db.select(Charge).where(Charge.account_id == account.id))
    assert charge.stripe_invoice_id == invoice.id
    page = client.get(f"/admin/accounts/{account.id}").get_data(as_text=True)
    assert f"{invoice.number} · paid" in page
    confirmation = review(client, charge, "12.50")
    assert (f"We have refunded $12.50 of invoice {invoice.number} ($49.00)"
            in confirmation.get_data(as_text=True))
    assert confirm(client, charge, confirmation, 1250).status_code == 303
    mails = [path.read_text() for path in outbox.glob("*.eml")]
    assert any(f"refunded $12.50 of invoice {invoice.number}" in mail for mail in mails)


def test_auditors_and_customers_cannot_refund(app, client, make_user, login, paid_charge):
    charge = paid_charge(5000)
    auditor = make_user(Role.AUDITOR)
    login(auditor)
    page = client.get(f"/admin/accounts/{charge.account_id}").get_data(as_text=True)
    assert "Review refund" not in page and charge.stripe_charge_id in page
    token = csrf_from(client, f"/admin/accounts/{charge.account_id}")
    data = {"csrf_token": token, "amount": "1000", "reason": "duplicate", "note": "x",
            "form_token": "auditor-token-0123456789", "password": DEFAULT_PASSWORD}
    for url in (f"/admin/charges/{charge.id}/refund/review", f"/admin/charges/{charge.id}/refund",
                "/admin/refunds/1/approve", "/admin/refunds/1/retry"):
        assert client.post(url, data=data).status_code == 403, url
    client.post("/auth/logout", data={"csrf_token": token})
    login(make_user())
    assert client.get(f"/admin/accounts/{charge.account_id}").status_code == 403
    assert records() == []
