"""Events processed where there is no web request (an RQ worker, `billing retry-events`) render
mail and PDFs like the inline path does: found by bench/soak.py, where every invoice.paid
failed in the RQ workers with "'NoneType' object has no attribute 'is_authenticated'"."""
from __future__ import annotations

import threading

from flask import has_request_context

from portal.extensions import db
from portal.models import QueuedMail, WebhookEvent
from portal.services.webhooks import retry_failed_events
from tests.invoice_support import bill


def test_invoice_paid_renders_its_receipt_outside_a_request(app, stripe_api, make_user,
                                                            deliver_webhooks):
    user = make_user()
    invoice = bill(stripe_api, deliver_webhooks, user.account, [("Consulting", 25000)])
    event = db.session.scalar(db.select(WebhookEvent).where(WebhookEvent.type == "invoice.paid"))
    # As if the receipt had never been queued: processing it again renders the PDF.
    db.session.execute(db.delete(QueuedMail).where(
        QueuedMail.dedupe_key == f"receipt:{invoice.stripe_invoice_id}"))
    event.status = "failed"
    db.session.commit()
    outcome = {}

    def worker() -> None:
        # A thread of its own has no request context, as in an RQ worker.
        with app.app_context():
            outcome["request"] = has_request_context()
            outcome["retried"] = retry_failed_events()
            db.session.remove()

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert outcome == {"request": False, "retried": {"processed": 1}}
    db.session.expire_all()
    assert db.session.scalar(db.select(db.func.count(QueuedMail.id)).where(
        QueuedMail.dedupe_key == f"receipt:{invoice.stripe_invoice_id}")) == 1
