"""Accounts and users: registration, sign-in, password hashing and password resets."""
from __future__ import annotations

import hashlib

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy.exc import IntegrityError

from portal.extensions import db
from portal.models import Account, Role, User
from portal.models.account import find_user_by_email
from portal.models.types import utcnow
from portal.services.sessions import end_all_sessions

# Argon2id with the library's defaults (RFC 9106 low-memory profile).
password_hasher = PasswordHasher()
# Verifying against this keeps sign-in timing the same whether or not the email exists.
_DUMMY_HASH = password_hasher.hash("not-a-real-password")
RESET_SALT = "password-reset"


class EmailTaken(ValueError):
    """Raised when an email address already belongs to a user."""


class SignInDisabled(PermissionError):
    """Raised when the password is right but staff have disabled this user's sign-in."""


def hash_password(password: str) -> str:
    """Return an Argon2id hash of the password."""
    return password_hasher.hash(password)


def register_customer(email: str, password: str, account_name: str) -> User:
    """Create an account and its owner; raise EmailTaken if the email is in use."""
    email = email.strip().lower()
    if find_user_by_email(email) is not None:
        raise EmailTaken(email)
    account = Account(name=account_name.strip() or email)
    user = User(email=email, password_hash=hash_password(password), role=Role.CUSTOMER.value)
    user.account = account
    db.session.add_all([account, user])
    try:
        db.session.commit()
    except IntegrityError as exc:
        # Two registrations raced for the same email: the unique key decided.
        db.session.rollback()
        raise EmailTaken(email) from exc
    return user


def create_staff_user(email: str, password: str, role: Role) -> User:
    """Create an admin or auditor (or a customer with its own account)."""
    if role is Role.CUSTOMER:
        return register_customer(email, password, email)
    email = email.strip().lower()
    if find_user_by_email(email) is not None:
        raise EmailTaken(email)
    user = User(email=email, password_hash=hash_password(password), role=role.value)
    db.session.add(user)
    db.session.commit()
    return user


def authenticate(email: str, password: str) -> User | None:
    """Return the active user whose password matches, or None; raise SignInDisabled.

    Only someone who knows the password learns that the sign-in is disabled.
    """
    user = find_user_by_email(email)
    if user is None:
        try:
            password_hasher.verify(_DUMMY_HASH, password)
        except VerificationError:
            pass
        return None
    try:
        password_hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return None
    if not user.active:
        raise SignInDisabled(user.email)
    if password_hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    record_sign_in(user)
    return user


def record_sign_in(user: User) -> None:
    """Stamp the user's last sign-in (a password sign-in, or the one registration makes)."""
    user.last_login_at = utcnow()
    db.session.commit()


def _reset_serializer() -> URLSafeTimedSerializer:
    """Return the signer for password-reset tokens."""
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=RESET_SALT)


def _password_fingerprint(user: User) -> str:
    """Return a digest of the stored hash, so a token dies once the password changes."""
    return hashlib.sha256(user.password_hash.encode()).hexdigest()[:16]


def password_reset_token(user: User) -> str:
    """Return a signed token that resets this user's password once, until it expires."""
    return _reset_serializer().dumps({"uid": user.id, "pw": _password_fingerprint(user)})


def user_for_reset_token(token: str) -> User | None:
    """Return the user a valid, unexpired, unused reset token names, or None."""
    max_age = current_app.config["PASSWORD_RESET_MAX_AGE_S"]
    try:
        payload = _reset_serializer().loads(token, max_age=max_age)
    except (SignatureExpired, BadSignature):
        return None
    user = db.session.get(User, payload.get("uid"))
    if user is None or not user.active or payload.get("pw") != _password_fingerprint(user):
        return None
    return user


def reset_password(user: User, new_password: str) -> None:
    """Set a new password; every reset token and every session of the user stops working."""
    user.password_hash = hash_password(new_password)
    end_all_sessions(user)
    db.session.commit()


def check_password(user: User, password: str) -> bool:
    """Return True when `password` is the user's current one."""
    try:
        return password_hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def change_password(user: User, current: str, new_password: str) -> bool:
    """Set a new password if `current` is right; end every session. False when it is wrong."""
    if not check_password(user, current):
        return False
    reset_password(user, new_password)
    return True
