"""Queued mail (shared spec): one row per message in the caller's transaction, dedupe keys,
delivery only after commit, manual delivery and `flask mail flush` with retries."""
from __future__ import annotations

from email import policy
from email.parser import BytesParser

from portal.extensions import db
from portal.models import QueuedMail
from portal.services.mail import deliver_queued_mail, queue_mail


def sent(outbox) -> list:
    """Return the messages written to the outbox."""
    if not outbox.exists():
        return []
    return [BytesParser(policy=policy.default).parsebytes(path.read_bytes())
            for path in sorted(outbox.glob("*.eml"))]


def test_rows_are_written_in_the_callers_transaction_and_deduped(app, outbox):
    assert queue_mail(to="a@example.com", subject="One", text="Hello", html="<p>Hello</p>",
                      attachments=[("a.txt", "text/plain", b"attached")], dedupe_key="k1")
    assert queue_mail(to="a@example.com", subject="Again", text="Hello", dedupe_key="k1") is False
    assert sent(outbox) == []  # nothing leaves before the commit
    db.session.commit()
    messages = sent(outbox)
    assert [m["Subject"] for m in messages] == ["One"]
    message = messages[0]
    assert message.get_body(("plain",)).get_content().strip() == "Hello"
    assert "<p>Hello</p>" in message.get_body(("html",)).get_content()
    attachment = next(message.iter_attachments())
    assert (attachment.get_filename(), attachment.get_content()) == ("a.txt", "attached")
    row = db.session.scalar(db.select(QueuedMail))
    assert (row.status, row.attempts, row.sent_at is not None) == ("sent", 1, True)
    assert queue_mail(to="a@example.com", subject="Later", text="x", dedupe_key="k1") is False


def test_a_rolled_back_transaction_sends_nothing(app, outbox):
    queue_mail(to="a@example.com", subject="Never", text="x", dedupe_key="rolled-back")
    db.session.flush()
    db.session.rollback()
    db.session.commit()
    assert sent(outbox) == []
    assert db.session.scalar(db.select(QueuedMail)) is None
    assert queue_mail(to="a@example.com", subject="Now", text="x", dedupe_key="rolled-back")
    db.session.commit()
    assert [m["Subject"] for m in sent(outbox)] == ["Now"]


def test_manual_delivery_waits_for_deliver_queued_mail(app, outbox):
    app.config["MAIL_DELIVERY"] = "manual"
    queue_mail(to="a@example.com", subject="Manual", text="x")
    db.session.commit()
    assert sent(outbox) == []
    assert deliver_queued_mail() == 1
    assert [m["Subject"] for m in sent(outbox)] == ["Manual"]
    assert deliver_queued_mail() == 0


def test_flush_command_retries_failed_rows_up_to_five_attempts(app, outbox, tmp_path):
    app.config["MAIL_DELIVERY"] = "manual"
    queue_mail(to="a@example.com", subject="Flaky", text="x")
    db.session.commit()
    # An outbox path that is a file makes every delivery fail, as an SMTP outage would.
    blocked = tmp_path / "blocked"
    blocked.write_text("not a folder")
    app.config["MAIL_OUTBOX_DIR"] = str(blocked)
    for _ in range(2):
        assert deliver_queued_mail() == 0
    row = db.session.scalar(db.select(QueuedMail))
    db.session.refresh(row)
    assert (row.status, row.attempts) == ("failed", 2) and row.last_error
    app.config["MAIL_OUTBOX_DIR"] = str(outbox)
    result = app.test_cli_runner().invoke(args=["mail", "flush"])
    assert result.exit_code == 0 and "Sent 1 message(s)." in result.output
    db.session.refresh(row)
    assert (row.status, row.attempts) == ("sent", 3)
    assert [m["Subject"] for m in sent(outbox)] == ["Flaky"]


def test_rows_that_failed_five_times_are_left_alone(app, outbox, tmp_path):
    app.config["MAIL_DELIVERY"] = "manual"
    queue_mail(to="a@example.com", subject="Hopeless", text="x")
    db.session.commit()
    blocked = tmp_path / "blocked"
    blocked.write_text("file")
    app.config["MAIL_OUTBOX_DIR"] = str(blocked)
    for _ in range(7):
        deliver_queued_mail()
    row = db.session.scalar(db.select(QueuedMail))
    db.session.refresh(row)
    assert row.attempts == 5
    app.config["MAIL_OUTBOX_DIR"] = str(outbox)
    assert deliver_queued_mail() == 0 and sent(outbox) == []


def test_thread_delivery_sends_after_the_commit(app, outbox):
    import time

    app.config["MAIL_DELIVERY"] = "thread"
    queue_mail(to="a@example.com", subject="Threaded", text="x")
    db.session.commit()
    deadline = time.monotonic() + 10
    while not sent(outbox) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [m["Subject"] for m in sent(outbox)] == ["Threaded"]


def test_rq_delivery_runs_in_a_worker_when_redis_is_set(app, monkeypatch, database_url):
    import os
    from pathlib import Path

    from redis import Redis
    from rq import Queue, SimpleWorker

    from portal.services.mail import MAIL_QUEUE
    from portal.worker import close_worker_apps
    from tests.helpers import skip_or_fail

    url = os.environ.get("TEST_REDIS_URL")
    if not url:
        skip_or_fail("set TEST_REDIS_URL=redis://127.0.0.1:6379/5 to test RQ mail delivery",
                     "REQUIRE_REDIS")
    app.config.update(REDIS_URL=url, MAIL_DELIVERY="rq")
    # The worker builds its own app from the environment, as a deployed worker would.
    monkeypatch.setenv("DATABASE_URL", database_url)
    queue = Queue(MAIL_QUEUE, connection=Redis.from_url(url))
    queue.empty()
    queue_mail(to="a@example.com", subject="Via RQ", text="x")
    db.session.commit()
    row = db.session.scalar(db.select(QueuedMail))
    assert row.status == "queued" and queue.count == 1
    try:
        SimpleWorker([queue], connection=queue.connection).work(burst=True)
    finally:
        close_worker_apps()
    db.session.refresh(row)
    assert row.status == "sent"
    worker_outbox = Path(os.environ["INSTANCE_PATH"]) / "outbox"
    assert [m["Subject"] for m in sent(worker_outbox)] == ["Via RQ"]
    queue.connection.close()


def test_a_referenced_invoice_pdf_is_rendered_at_sending_and_a_missing_one_fails(app, outbox):
    import io

    from pypdf import PdfReader

    from portal.services.mail_attachments import invoice_pdf_attachment
    from tests.factories import make_account, make_invoice

    app.config["MAIL_DELIVERY"] = "manual"
    invoice = make_invoice(make_account(), status="paid")
    reference = invoice_pdf_attachment(invoice)
    assert reference == {"filename": f"invoice-{invoice.number}.pdf",
                         "mimetype": "application/pdf", "invoice": invoice.stripe_invoice_id}
    queue_mail(to="a@example.com", subject="With PDF", text="x", attachments=[reference])
    queue_mail(to="b@example.com", subject="Gone", text="x", attachments=[
        {**reference, "invoice": "in_not_mirrored"}])
    db.session.commit()
    # Only the reference is queued: no PDF is rendered in the queueing transaction.
    stored = db.session.scalar(db.select(QueuedMail).where(QueuedMail.subject == "With PDF"))
    assert stored.attachments == [reference]
    assert deliver_queued_mail() == 1
    [message] = sent(outbox)
    attachment = next(message.iter_attachments())
    assert attachment.get_filename() == reference["filename"]
    assert attachment.get_content_type() == "application/pdf"
    pdf_text = PdfReader(io.BytesIO(attachment.get_content())).pages[0].extract_text()
    assert invoice.number in pdf_text
    db.session.expire_all()
    gone = db.session.scalar(db.select(QueuedMail).where(QueuedMail.subject == "Gone"))
    assert (gone.status, gone.attempts) == ("failed", 1)
    assert "in_not_mirrored" in gone.last_error and "AttachmentUnavailable" in gone.last_error
