"""Outgoing mail: queued with the change that causes it, sent after commit (SMTP or outbox)."""
from __future__ import annotations

import logging
import os
import smtplib
import threading
import uuid
from collections.abc import Iterable
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

from flask import Flask, current_app, has_app_context
from redis import Redis
from rq import Queue
from sqlalchemy import event, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from portal.extensions import db
from portal.models.mail import QueuedMail
from portal.models.types import utcnow
from portal.services.mail_attachments import (
    AttachmentUnavailable,
    attachment_content,
    stored_attachment,
)

MAX_ATTEMPTS = 5
MAIL_QUEUE = "mail"
PENDING_KEY = "queued_mail_ids"
log = logging.getLogger(__name__)


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
        # Messages hold reset links: the outbox is for its owner's eyes only.
        outbox = Path(config["MAIL_OUTBOX_DIR"])
        outbox.mkdir(mode=0o700, parents=True, exist_ok=True)
        name = uuid.uuid4().hex
        partial = outbox / f".{name}.part"
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(message.as_bytes())
        # Renamed once complete, so whoever reads *.eml never sees half a message.
        os.replace(partial, outbox / f"{name}.eml")
    return message


def queue_mail(*, to: str, subject: str, text: str, html: str | None = None,
               attachments: Iterable[tuple[str, str, bytes] | dict] = (),
               dedupe_key: str | None = None) -> bool:
    """Add a message to the current transaction; False when its dedupe_key is already queued.

    An attachment is (filename, mimetype, bytes), or a reference rendered when the message is
    sent (services.mail_attachments, e.g. an invoice PDF).
    """
    if dedupe_key is not None:
        exists = db.session.scalar(
            db.select(QueuedMail.id).where(QueuedMail.dedupe_key == dedupe_key))
        if exists is not None:
            return False
    row = QueuedMail(
        to=to, subject=subject, text=text, html=html, dedupe_key=dedupe_key,
        attachments=[stored_attachment(item) for item in attachments],
        status="queued", attempts=0,
    )
    if dedupe_key is None or db.session.get_bind().dialect.name == "sqlite":
        # pysqlite opens no transaction before a SAVEPOINT, so releasing one would commit the
        # caller's work early (a rolled-back caller would leave its mail queued). SQLite has a
        # single writer: a racing twin fails the caller's commit, which webhooks retry.
        db.session.add(row)
        return True
    # A concurrent writer may insert the same key between the check and here: the unique key
    # decides, inside a savepoint so the caller's transaction survives.
    try:
        with db.session.begin_nested():
            db.session.add(row)
    except IntegrityError:
        return False
    return True


def deliver_queued_mail(ids: Iterable[int] | None = None) -> int:
    """Send queued rows (the given ids, or everything due); mark them sent or failed."""
    app = current_app._get_current_object()
    sent = 0
    with Session(db.engine) as session:
        query = db.select(QueuedMail.id)
        if ids is None:
            query = query.where(
                (QueuedMail.status == "queued")
                | ((QueuedMail.status == "failed") & (QueuedMail.attempts < MAX_ATTEMPTS)))
        else:
            query = query.where(QueuedMail.id.in_(list(ids)), QueuedMail.status == "queued")
        for mail_id in session.scalars(query.order_by(QueuedMail.id)).all():
            sent += _deliver_one(app, session, mail_id)
    return sent


def _deliver_one(app: Flask, session: Session, mail_id: int) -> int:
    """Claim one row (so two senders never both send it), send it, record the outcome."""
    row = session.get(QueuedMail, mail_id)
    if row is None or row.status == "sent":
        return 0
    claimed = session.execute(
        update(QueuedMail)
        .where(QueuedMail.id == mail_id, QueuedMail.status == row.status,
               QueuedMail.attempts == row.attempts)
        .values(attempts=row.attempts + 1)
    ).rowcount
    session.commit()
    if claimed != 1:
        return 0
    session.refresh(row)
    try:
        with app.app_context():
            # Referenced documents (a receipt's PDF) are rendered now, outside the
            # transaction that queued the message.
            attachments = [attachment_content(item) for item in row.attachments or []]
            send_mail(row.to, row.subject, row.text, row.html, attachments)
    except (OSError, smtplib.SMTPException, AttachmentUnavailable) as exc:
        row.status, row.last_error = "failed", f"{type(exc).__name__}: {exc}"[:2000]
        session.commit()
        log.warning("mail %s to %s failed (attempt %s): %s", row.id, row.to, row.attempts, exc)
        return 0
    row.status, row.sent_at, row.last_error = "sent", utcnow(), None
    session.commit()
    return 1


def dispatch_queued_mail(app: Flask, ids: list[int]) -> None:
    """Start delivery of just-committed rows the way MAIL_DELIVERY says."""
    mode = app.config.get("MAIL_DELIVERY", "thread")
    if mode == "manual" or not ids:
        return
    if mode == "inline":
        with app.app_context():
            deliver_queued_mail(ids)
    elif mode == "rq":
        # Named, not imported: the worker module builds apps, which services never do.
        queue = Queue(MAIL_QUEUE, connection=Redis.from_url(app.config["REDIS_URL"]))
        queue.enqueue("portal.worker.run_mail", ids)
    else:
        def deliver_in_background() -> None:
            with app.app_context():
                deliver_queued_mail(ids)

        threading.Thread(target=deliver_in_background, name="mail-delivery",
                         daemon=True).start()


@event.listens_for(Session, "after_flush")
def _remember_new_mail(session: Session, _flush_context) -> None:
    """Note the ids of mail rows this transaction wrote, to deliver once it commits."""
    ids = [obj.id for obj in session.new if isinstance(obj, QueuedMail)]
    if ids:
        session.info.setdefault(PENDING_KEY, []).extend(ids)


@event.listens_for(Session, "after_commit")
def _deliver_after_commit(session: Session) -> None:
    """Hand committed mail rows to delivery; never inside the caller's transaction."""
    if session.in_nested_transaction():
        return  # a savepoint was released: the real commit is still to come
    ids = session.info.pop(PENDING_KEY, None)
    if ids and has_app_context():
        dispatch_queued_mail(current_app._get_current_object(), ids)


@event.listens_for(Session, "after_rollback")
def _forget_rolled_back_mail(session: Session) -> None:
    """Drop ids of rows a rollback undid (a savepoint's rollback keeps its outer rows)."""
    if not session.in_nested_transaction():
        session.info.pop(PENDING_KEY, None)
