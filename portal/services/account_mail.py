"""Registration and password-reset requests that answer alike for known and unknown emails.

Both do the same work either way (a password hash, a token, one queued mail or none) and
never talk to a mail server inside the request: the mail is queued and sent after commit.
"""
from __future__ import annotations

import time

from flask import current_app
from sqlalchemy.exc import IntegrityError

from portal.extensions import db
from portal.models import Account, Role, User
from portal.models.account import find_user_by_email
from portal.services.accounts import _reset_serializer, hash_password, password_reset_token
from portal.services.links import external_url
from portal.services.mail import queue_mail


def request_registration(email: str, password: str, account_name: str) -> None:
    """Create the account and mail a welcome, or mail the existing owner that someone tried."""
    email = email.strip().lower()
    password_hash = hash_password(password)  # done for taken emails too: same time either way
    owner = find_user_by_email(email)
    if owner is None:
        account = Account(name=account_name.strip() or email)
        user = User(email=email, password_hash=password_hash, role=Role.CUSTOMER.value)
        user.account = account
        db.session.add_all([account, user])
        try:
            db.session.flush()
        except IntegrityError:
            # Another registration won the race for this email: it is taken after all.
            db.session.rollback()
            owner = find_user_by_email(email)
        else:
            queue_mail(
                to=email, subject="Your billing portal account is ready",
                text=(f"Welcome! The account for {account.name} is ready.\n\n"
                      f"Sign in with the password you chose:\n{external_url('auth.login')}\n"),
            )
    if owner is not None:
        hour = int(time.time() // 3600)
        queue_mail(
            to=owner.email, subject="Someone tried to create an account with your email",
            text=("Someone tried to create a new billing portal account with this email "
                  "address, which already has one. Nothing was changed.\n\n"
                  f"Sign in: {external_url('auth.login')}\n"
                  f"Forgot your password? {external_url('auth.forgot_password')}\n\n"
                  "If it was not you, you can ignore this message.\n"),
            dedupe_key=f"register-taken:{owner.id}:{hour}",
        )
    db.session.commit()


def queue_reset_mail(email: str) -> None:
    """Queue a single-use reset link for an active user; do the same work for anyone else."""
    user = find_user_by_email(email)
    if user is None or not user.active:
        _reset_serializer().dumps({"uid": 0, "pw": "0" * 16})  # the same signing work
        db.session.commit()
        return
    link = external_url("auth.reset_password_page", token=password_reset_token(user))
    minutes = current_app.config["PASSWORD_RESET_MAX_AGE_S"] // 60
    queue_mail(
        to=user.email, subject="Reset your billing portal password",
        text=("Someone asked to reset the password for this email address.\n\n"
              f"Choose a new password here (valid for {minutes} minutes, once):\n{link}\n\n"
              "If it was not you, ignore this message: your password stays as it is.\n"),
    )
    db.session.commit()
