"""What the customer sees of a refund: the invoice page, a fresh invoice PDF, and one email
when Stripe reports the refund succeeded.

Stripe: a refund's status is pending, requires_action, succeeded, failed or canceled, and
refund.created / refund.updated / refund.failed report it (docs.stripe.com/refunds,
docs.stripe.com/api/refunds/object).
"""
from __future__ import annotations

import re
from email import policy
from email.parser import BytesParser

from portal.extensions import db
from portal.models import Charge, QueuedMail, RefundRequest, Role
from tests.factories import DEFAULT_PASSWORD
from tests.helpers import csrf_from
from tests.invoice_support import bill, deliver_all, flat, pdf_pages, signed_in
from tests.test_refunds import confirm, review

AMOUNT_PAID = 49000


def mails(outbox) -> list:
    """Return the messages in the outbox, oldest first."""
    return [BytesParser(policy=policy.default).parsebytes(path.read_bytes())
            for path in sorted(outbox.glob("*.eml"))]


def refund_mails(outbox) -> list:
    """Return the refund notices in the outbox."""
    return [mail for mail in mails(outbox) if mail["Subject"].startswith("Refund of")]


def paid_invoice(app, stripe_api, deliver_webhooks, make_user, card="pm_card_visa"):
    """Return (customer, their paid invoice, its charge) made at the sandbox and mirrored."""
    customer = make_user()
    invoice = bill(stripe_api, deliver_webhooks, customer.account, [("Annual plan", AMOUNT_PAID)],
                   card=card)
    assert invoice.status == "paid"
    charge = db.session.scalar(db.select(Charge).where(
        Charge.stripe_invoice_id == invoice.stripe_invoice_id))
    return customer, invoice, charge


def test_an_admin_refund_shows_on_the_invoice_page_a_new_pdf_and_one_email(
        app, stripe_api, deliver_webhooks, make_user, outbox):
    customer, invoice, charge = paid_invoice(app, stripe_api, deliver_webhooks, make_user)
    person = signed_in(app, customer)
    pdf_url = f"/billing/invoices/{invoice.stripe_invoice_id}/pdf"
    before = person.get(pdf_url)
    assert "Refund" not in flat("".join(pdf_pages(before.data)))

    admin = signed_in(app, make_user(Role.ADMIN))
    page = review(admin, charge, "120.00")
    assert f"We have refunded $120.00 of invoice {invoice.number} ($490.00)" in page.get_data(
        as_text=True)
    assert confirm(admin, charge, page, 12000).status_code == 303
    deliver_all(deliver_webhooks)

    shown = person.get(f"/billing/invoices/{invoice.stripe_invoice_id}").get_data(as_text=True)
    assert "Refund (succeeded)" in shown and "−$120.00" in shown
    assert "partially refunded" in shown
    after = person.get(pdf_url, headers={"If-None-Match": before.headers["ETag"]})
    assert after.status_code == 200 and after.headers["ETag"] != before.headers["ETag"]
    text = flat("".join(pdf_pages(after.data)))
    assert "Refund (succeeded) −$120.00" in text and "partially refunded" in text

    [notice] = refund_mails(outbox)
    assert notice["To"] == customer.email and notice["Subject"] == "Refund of $120.00"
    body = notice.get_body(("plain",)).get_content()
    assert f"We have refunded $120.00 of invoice {invoice.number} ($490.00)" in body
    assert f"/billing/invoices/{invoice.stripe_invoice_id}" in body
    # The refund's later events (charge.refunded, refund.updated) never send it twice.
    [queued] = db.session.scalars(db.select(QueuedMail.dedupe_key).where(
        QueuedMail.dedupe_key.like("refund:%"))).all()
    assert queued.split(":")[1].startswith("re_")
    deliver_all(deliver_webhooks)
    assert len(refund_mails(outbox)) == 1


def test_a_refund_made_at_stripe_also_reaches_the_customer(
        app, stripe_api, deliver_webhooks, make_user, outbox):
    customer, invoice, charge = paid_invoice(app, stripe_api, deliver_webhooks, make_user)
    stripe_api.v1.refunds.create(params={"charge": charge.stripe_charge_id},
                                 options={"idempotency_key": f"test-full-refund-{charge.id}"})
    deliver_all(deliver_webhooks)
    [notice] = refund_mails(outbox)
    assert notice["Subject"] == "Refund of $490.00"
    shown = signed_in(app, customer).get(
        f"/billing/invoices/{invoice.stripe_invoice_id}").get_data(as_text=True)
    assert re.search(r"<span class=\"settlement\">refunded</span>", shown)


def test_a_refund_held_for_approval_is_announced_only_once_sent(
        app, stripe_api, deliver_webhooks, make_user, outbox):
    app.config["REFUND_APPROVAL_THRESHOLD"] = {"usd": 10000}
    _customer, _invoice, charge = paid_invoice(app, stripe_api, deliver_webhooks, make_user)
    asker = signed_in(app, make_user(Role.ADMIN))
    assert confirm(asker, charge, review(asker, charge, "200.00"), 20000).status_code == 303
    deliver_all(deliver_webhooks)
    assert refund_mails(outbox) == []
    held = db.session.scalar(db.select(RefundRequest))
    assert held.status == "awaiting_approval"
    approver = signed_in(app, make_user(Role.ADMIN))
    token = csrf_from(approver, f"/admin/accounts/{charge.account_id}")
    approved = approver.post(f"/admin/refunds/{held.id}/approve",
                             data={"csrf_token": token, "password": DEFAULT_PASSWORD})
    assert approved.status_code == 303
    deliver_all(deliver_webhooks)
    assert [mail["Subject"] for mail in refund_mails(outbox)] == ["Refund of $200.00"]
