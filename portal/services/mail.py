"""Outgoing mail: queued in the caller's transaction, delivered only after it commits.

Delivery goes through SMTP when MAIL_SERVER is set, otherwise each message becomes an .eml
file in the outbox folder. MAIL_DELIVERY picks who delivers queued rows after a commit:
'rq' (an RQ job; the default with REDIS_URL), 'thread' (a background thread; the default
otherwise), 'inline' (right after the commit, in the same thread) or 'manual'
(`deliver_queued_mail()` or `flask mail flush` only).
"""
from __future__ import annotations

import base64
import smtplib
import threading
import uuid
from collections.abc import Iterable
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

from flask import Flask, current_app
from sqlalchemy import event
from sqlalchemy.orm import Session

from portal.extensions import db
from portal.models.mail import MAX_ATTEMPTS, QueuedMail

PENDING_KEY = "queued_mail_ids"
MAIL_QUEUE = "mail"


def build_message(to: str, subject: str, body: str, html: str | None = None,
                  attachments: Iterable[tuple[str, str, bytes]] = ()) -> EmailMessage:
    """Return a message from the configured sender: text, optional HTML, attachments."""
    message = EmailMessage()
    message["From"] = current_app.config["MAIL_DEFAULT_SENDER"]
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = make_msgid(domain="billing-portal")
    message.set_content(body)
    if html:
        message.add_alternative(html, subtype="html")
    for filename, mimetype, content in attachments:
        maintype, _, subtype = mimetype.partition("/")
        message.add_attachment(content, maintype=maintype, subtype=subtype or "octet-stream",
                               filename=filename)
    return message


def send_mail(to: str, subject: str, body: str, html: str | None = None,
              attachments: Iterable[tuple[str, str, bytes]] = ()) -> EmailMessage:
    """Send one message through SMTP, or write it to the outbox folder when none is set."""
    message = build_message(to, subject, body, html, attachments)
    config = current_app.config
    if config.get("MAIL_SERVER"):
        with smtplib.SMTP(config["MAIL_SERVER"], config["MAIL_PORT"], timeout=10) as smtp:
            if config.get("MAIL_USE_TLS"):
                smtp.starttls()
            if config.get("MAIL_USERNAME"):
                smtp.login(config["MAIL_USERNAME"], config["MAIL_PASSWORD"] or "")
            smtp.send_message(message)
    else:
        outbox = Path(config["MAIL_OUTBOX_DIR"])
        outbox.mkdir(parents=True, exist_ok=True)
        path = outbox / f"{uuid.uuid4().hex}.eml"
        path.write_bytes(message.as_bytes())
    return message


def queue_mail(*, to: str, subject: str, text: str, html: str | None = None,
               attachments: Iterable[tuple[str, str, bytes]] = (),
               dedupe_key: str | None = None) -> bool:
    """Queue a message in the current transaction; False when `dedupe_key` was queued before."""
    if dedupe_key is not None and db.session.scalar(
            db.select(QueuedMail.id).where(QueuedMail.dedupe_key == dedupe_key)) is not None:
        return False
    row = QueuedMail(
        dedupe_key=dedupe_key, to=to, subject=subject, text=text, html=html,
        attachments=[{"filename": name, "mimetype": mimetype,
                      "base64": base64.b64encode(content).decode("ascii")}
                     for name, mimetype, content in attachments],
        status="queued", attempts=0)
    # Check-then-insert: should another transaction queue the same key meanwhile, the unique
    # key fails this one's commit, and its retry (webhook processing retries on integrity
    # errors) then finds the row. No savepoint: pysqlite would commit the caller's work early.
    db.session.add(row)
    return True


def _send_row(row: QueuedMail) -> None:
    """Send one queued row and record the outcome on it."""
    try:
        send_mail(row.to, row.subject, row.text, row.html, [
            (item["filename"], item["mimetype"], base64.b64decode(item["base64"]))
            for item in row.attachments or []])
        row.transition("sent")
    except Exception as exc:  # noqa: BLE001 - a failed send is kept with its error for retry
        row.transition("failed", f"{type(exc).__name__}: {exc}")


def deliver_queued_mail(ids: Iterable[int] | None = None) -> int:
    """Send queued rows (all of them, or those `ids`), retrying failed ones; return how many
    were sent. Runs in its own session so it never shares the caller's transaction."""
    sent = 0
    with Session(db.engine) as session:
        query = db.select(QueuedMail).where(
            QueuedMail.status.in_(("queued", "failed")), QueuedMail.attempts < MAX_ATTEMPTS)
        if ids is not None:
            query = query.where(QueuedMail.id.in_(list(ids)))
        for row_id in list(session.scalars(query.with_only_columns(QueuedMail.id)
                                           .order_by(QueuedMail.id))):
            row = session.get(QueuedMail, row_id, with_for_update=True)
            if row is None or row.status == "sent" or row.attempts >= MAX_ATTEMPTS:
                session.rollback()
                continue
            _send_row(row)
            sent += row.status == "sent"
            session.commit()
    return sent


def delivery_mode(config) -> str:
    """Return how queued mail is delivered after a commit."""
    return config.get("MAIL_DELIVERY") or ("rq" if config.get("REDIS_URL") else "thread")


def _deliver_in_thread(app: Flask, ids: list[int]) -> None:
    """Deliver rows from a background thread with its own app context."""
    def run() -> None:
        with app.app_context():
            deliver_queued_mail(ids)

    threading.Thread(target=run, name="mail-delivery", daemon=True).start()


def run_mail_job(ids: list[int]) -> int:
    """Deliver rows inside an RQ worker, with an app built once per worker process."""
    from portal.services.jobs import worker_app

    with worker_app().app_context():
        return deliver_queued_mail(ids)


def schedule_delivery(ids: list[int]) -> None:
    """Hand committed rows to the configured delivery."""
    app = current_app._get_current_object()
    mode = delivery_mode(app.config)
    if mode == "inline":
        deliver_queued_mail(ids)
    elif mode == "thread":
        _deliver_in_thread(app, ids)
    elif mode == "rq":
        from redis import Redis
        from rq import Queue

        queue = Queue(MAIL_QUEUE, connection=Redis.from_url(app.config["REDIS_URL"]))
        queue.enqueue(run_mail_job, ids)
    # 'manual': rows wait for deliver_queued_mail() or `flask mail flush`.


@event.listens_for(Session, "after_flush")
def _remember_queued(session: Session, _context) -> None:
    """Note the ids of mail rows written in this transaction."""
    ids = [obj.id for obj in session.new if isinstance(obj, QueuedMail)]
    if ids:
        session.info.setdefault(PENDING_KEY, []).extend(ids)


@event.listens_for(Session, "after_commit")
def _deliver_after_commit(session: Session) -> None:
    """Deliver the rows this transaction queued, now that they are committed."""
    if session.in_nested_transaction():
        return  # a savepoint was released; the rows wait for the outer commit
    ids = session.info.pop(PENDING_KEY, None)
    if ids:
        schedule_delivery(ids)


@event.listens_for(Session, "after_rollback")
def _forget_queued(session: Session) -> None:
    """Forget rows of a transaction that was rolled back: they were never written."""
    if not session.in_nested_transaction():
        session.info.pop(PENDING_KEY, None)


def flush_queue() -> int:
    """Send everything still queued (and failed rows under the attempt limit)."""
    return deliver_queued_mail()

