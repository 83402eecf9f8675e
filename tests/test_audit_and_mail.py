"""Issue 10, finding 6 (every customer billing action is audited) and the queued-mail spec."""
from __future__ import annotations

import smtplib

from portal.extensions import db
from portal.models import AuditEntry, PaymentMethod, QueuedMail, Subscription
from portal.services.mail import deliver_queued_mail, queue_mail
from tests.helpers import csrf_from, free_port
from tests.test_billing import catalog, subscribed  # noqa: F401  (fixtures)


def entries(action):
    """Return the audit entries of one action."""
    return db.session.scalars(db.select(AuditEntry).where(AuditEntry.action == action)).all()


def test_customer_billing_actions_are_audited_with_ip_and_request_id(
        app, client, stripe_api, subscribed, login, deliver_webhooks):  # noqa: F811
    user = subscribed("starter_month")
    login(user)
    ip = {"REMOTE_ADDR": "203.0.113.7"}
    token = csrf_from(client, "/billing/plans")
    preview = client.post("/billing/subscription/preview",
                          data={"csrf_token": token, "lookup_key": "pro_month"}, environ_base=ip)
    proration_date = preview.get_data(as_text=True).split('name="proration_date"')[1]
    proration_date = proration_date.split('value="')[1].split('"')[0]
    client.post("/billing/subscription/change", data={
        "csrf_token": token, "lookup_key": "pro_month", "proration_date": proration_date},
        environ_base=ip)
    [changed] = entries("subscription.plan_changed")
    assert changed.actor_id == user.id and changed.ip_address == "203.0.113.7"
    assert changed.stripe_request_id.startswith("req_")
    assert changed.amount > 0 and changed.currency == "usd"
    assert changed.details["from"] == "starter_month" and changed.details["to"] == "pro_month"
    client.post("/billing/subscription/cancel", data={
        "csrf_token": token, "feedback": "too_expensive", "comment": "Budget cut"},
        environ_base=ip)
    [cancelled] = entries("subscription.cancel_requested")
    assert cancelled.details["feedback"] == "too_expensive"
    assert cancelled.details["comment"] == "Budget cut"
    assert cancelled.stripe_request_id.startswith("req_")
    client.post("/billing/subscription/resume", data={"csrf_token": token}, environ_base=ip)
    assert len(entries("subscription.resumed")) == 1
    account = user.account
    second = stripe_api.v1.payment_methods.attach(
        "pm_card_mastercard",
        params={"customer": account.stripe_customer_id})
    deliver_webhooks()
    client.post(f"/billing/payment-methods/{second.id}/default", data={"csrf_token": token},
                environ_base=ip)
    [made_default] = entries("card.made_default")
    assert made_default.target_id == second.id and made_default.details["last4"]
    client.post(f"/billing/payment-methods/{second.id}/remove", data={"csrf_token": token},
                environ_base=ip)
    removed = entries("card.removed")
    assert [entry.target_id for entry in removed] == [second.id]
    assert removed[0].ip_address == "203.0.113.7"
    assert db.session.scalar(db.select(db.func.count(PaymentMethod.id))) >= 1
    assert db.session.scalar(db.select(Subscription.status)) == "active"


def test_checkout_start_is_audited_with_its_amount(app, client, catalog, make_user,  # noqa: F811
                                                   login):
    user = make_user()
    login(user)
    token = csrf_from(client, "/billing/plans")
    response = client.post("/billing/checkout", data={"csrf_token": token,
                                                      "lookup_key": "pro_year"},
                           environ_base={"REMOTE_ADDR": "198.51.100.4"})
    assert response.status_code == 303
    [started] = entries("checkout.started")
    assert started.target_id.startswith("cs_test_") and started.amount > 0
    assert started.ip_address == "198.51.100.4" and started.actor_id == user.id
    assert started.stripe_request_id.startswith("req_")


def test_queued_mail_waits_for_commit_dedupes_and_is_sent_after(app, outbox):
    app.config["MAIL_DELIVERY"] = "inline"
    assert queue_mail(to="a@example.com", subject="One", text="body", dedupe_key="k1") is True
    assert queue_mail(to="a@example.com", subject="One again", text="body",
                      dedupe_key="k1") is False
    assert list(outbox.glob("*.eml")) == []  # nothing leaves inside the transaction
    db.session.commit()
    assert len(list(outbox.glob("*.eml"))) == 1
    row = db.session.scalar(db.select(QueuedMail))
    db.session.refresh(row)
    assert row.status == "sent" and row.attempts == 1 and row.sent_at is not None
    queue_mail(to="b@example.com", subject="Rolled back", text="never")
    db.session.rollback()
    assert len(list(outbox.glob("*.eml"))) == 1
    assert db.session.scalar(db.select(db.func.count(QueuedMail.id))) == 1


def test_attachments_survive_the_queue_and_flush_sends_what_is_left(app, outbox):
    app.config["MAIL_DELIVERY"] = "manual"
    queue_mail(to="c@example.com", subject="Invoice", text="attached", html="<p>attached</p>",
               attachments=[("in_1.pdf", "application/pdf", b"%PDF-1.4 fake")])
    db.session.commit()
    assert list(outbox.glob("*.eml")) == []
    result = app.test_cli_runner().invoke(args=["mail", "flush"])
    assert result.exit_code == 0 and "Sent 1" in result.output
    [sent] = outbox.glob("*.eml")
    import email
    import email.policy

    message = email.message_from_bytes(sent.read_bytes(), policy=email.policy.default)
    [attachment] = list(message.iter_attachments())
    assert attachment.get_filename() == "in_1.pdf"
    assert attachment.get_content() == b"%PDF-1.4 fake"


def test_failed_mail_is_retried_up_to_five_attempts(app, outbox):
    app.config.update(MAIL_DELIVERY="manual", MAIL_SERVER="127.0.0.1",
                      MAIL_PORT=free_port())  # nobody listens: every send fails
    queue_mail(to="d@example.com", subject="Retry", text="body")
    db.session.commit()
    for _ in range(7):
        assert deliver_queued_mail() == 0
    row = db.session.scalar(db.select(QueuedMail))
    db.session.refresh(row)
    assert row.status == "failed" and row.attempts == 5
    assert "ConnectionRefusedError" in row.last_error or "SMTP" in row.last_error
    assert smtplib  # the transport the failure came from
