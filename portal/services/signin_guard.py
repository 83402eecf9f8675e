"""Per-account sign-in throttling (on top of per-address limits) and its notice to the owner.

Counters live in the rate limiter's storage (Redis when configured), so every worker and host
counts the same failures, whatever addresses they come from.
"""
from __future__ import annotations

import hashlib
import time

from flask import current_app
from limits import parse

from portal.extensions import limiter
from portal.models.account import find_user_by_email
from portal.services.links import external_url
from portal.services.mail import queue_mail

NAMESPACE = "signin-failures"


def _account_key(email: str) -> str:
    """Return the counter key for an email (hashed: addresses do not sit in Redis in clear)."""
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]


def _limit():
    """Return the configured per-account failure limit."""
    return parse(current_app.config["SIGNIN_ACCOUNT_LIMIT"])


def signin_allowed(email: str) -> bool:
    """Return False while this account has had too many failed sign-ins."""
    return limiter.limiter.test(_limit(), NAMESPACE, _account_key(email))


def record_failed_signin(email: str) -> None:
    """Count a failed sign-in; when the limit is reached, queue a notice to the owner once."""
    limit = _limit()
    key = _account_key(email)
    limiter.limiter.hit(limit, NAMESPACE, key)
    if limiter.limiter.test(limit, NAMESPACE, key):
        return
    user = find_user_by_email(email)
    if user is None or not user.active:
        return
    # One notice per lock-out window, however many more attempts follow.
    queue_mail(
        to=user.email,
        subject="Repeated failed sign-ins to your billing portal account",
        text=(
            f"There were {limit.amount} failed attempts to sign in to your account within "
            f"{limit.get_expiry() // 60} minutes, so sign-in is paused for a while.\n\n"
            "If it was you, wait and try again, or choose a new password here:\n"
            f"{external_url('auth.forgot_password')}\n\n"
            "If it was not you, your password held; choosing a longer one never hurts.\n"
        ),
        dedupe_key=f"signin-lock:{user.id}:{int(time.time() // limit.get_expiry())}",
    )
