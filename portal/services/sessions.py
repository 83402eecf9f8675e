"""Revocable sign-ins: a per-user session version and rotating remember-me tokens."""
from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from flask import current_app

from portal.extensions import db
from portal.models import RememberToken, User
from portal.models.types import utcnow


def end_all_sessions(user: User) -> None:
    """Sign the user out everywhere: every session cookie and remember-me token stops working.

    The caller commits, together with the change that asked for it.
    """
    user.session_version = (user.session_version or 0) + 1
    db.session.execute(db.delete(RememberToken).where(RememberToken.user_id == user.id))


# The account comes in the same query (every customer page reads it); built once, since
# every request runs it.
SESSION_USER = (db.select(User).options(db.joinedload(User.account))
                .where(User.id == db.bindparam("user_id")))


def user_for_session(identity: str) -> User | None:
    """Return the active user a session's "id:version" identity names, if still current."""
    user_id, _, version = identity.partition(":")
    if not (user_id.isdigit() and version.isdigit()):
        return None
    user = db.session.scalar(SESSION_USER, {"user_id": int(user_id)})
    if user is None or not user.active or user.session_version != int(version):
        return None
    return user


def _digest(validator: str) -> str:
    """Return the stored form of a token's secret half."""
    return hashlib.sha256(validator.encode()).hexdigest()


def issue_remember_token(user: User, expires_at: datetime | None = None) -> str:
    """Store a new remember-me token for the user and return the cookie value (commits)."""
    if expires_at is None:
        expires_at = utcnow() + timedelta(days=current_app.config["REMEMBER_DAYS"])
    selector, validator = secrets.token_hex(12), secrets.token_urlsafe(32)
    db.session.add(RememberToken(user_id=user.id, selector=selector,
                                 validator_digest=_digest(validator), expires_at=expires_at))
    db.session.commit()
    return f"{selector}:{validator}"


def redeem_remember_token(cookie: str) -> tuple[User, str, datetime] | None:
    """Use a remember-me cookie once: return (user, replacement cookie, its expiry), or None."""
    selector, _, validator = (cookie or "").partition(":")
    if not selector or not validator or len(cookie) > 200:
        return None
    token = db.session.scalar(db.select(RememberToken).where(RememberToken.selector == selector))
    if token is None:
        return None
    user = db.session.get(User, token.user_id)
    # Used or not, the token is spent: a copy of the cookie can never be used after the owner.
    db.session.delete(token)
    if (not hmac.compare_digest(token.validator_digest, _digest(validator))
            or token.expires_at <= utcnow() or user is None or not user.active):
        db.session.commit()
        return None
    replacement = issue_remember_token(user, token.expires_at)
    return user, replacement, token.expires_at
