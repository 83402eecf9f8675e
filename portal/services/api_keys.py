"""Account API keys: created once in full, kept only as a sha256, revoked for good."""
from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from portal.extensions import db
from portal.models import Account, ApiKey, User
from portal.services.audit import record_audit
from portal.services.refusals import BillingRefused

# 32 random bytes: far beyond guessing, so one fast sha256 is the right way to keep it
# (a slow password hash would only slow down every API request).
SECRET_BYTES = 32
SHOWN_SECRET_CHARS = 8
# last_used_at is written at most this often per key, so busy keys do not write on every call.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class ApiKeyRefused(BillingRefused):
    """Raised when a key cannot be created or revoked."""


def key_hash(secret: str) -> str:
    """Return the hex sha256 under which a key is stored and looked up."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def create_api_key(account: Account, name: str, *, live: bool, actor: User | None,
                   ip: str | None = None) -> tuple[ApiKey, str]:
    """Create a named key for the account; return it with the full secret (shown only once)."""
    name = name.strip()
    if not name:
        raise ApiKeyRefused("Give the key a name.")
    secret = ("bp_live_" if live else "bp_test_") + secrets.token_urlsafe(SECRET_BYTES)
    api_key = ApiKey(account_id=account.id, name=name[:100], key_hash=key_hash(secret),
                     prefix=secret[: len("bp_test_") + SHOWN_SECRET_CHARS],
                     created_by_id=actor.id if actor else None)
    db.session.add(api_key)
    db.session.flush()
    record_audit(actor, "api_key.created", "api_key", api_key.id, ip=ip,
                 details={"name": api_key.name, "prefix": api_key.prefix,
                          "account_id": account.id})
    db.session.commit()
    return api_key, secret


def account_api_keys(account: Account) -> list[ApiKey]:
    """Return the account's keys, active first, newest first."""
    query = (db.select(ApiKey).where(ApiKey.account_id == account.id)
             .order_by(ApiKey.revoked_at.is_not(None), ApiKey.created_at.desc(),
                       ApiKey.id.desc()))
    return list(db.session.scalars(query))


def revoke_api_key(account: Account, key_id: int, *, actor: User | None,
                   ip: str | None = None) -> ApiKey:
    """Revoke one of the account's keys; every later request with it is refused."""
    api_key = db.session.get(ApiKey, key_id)
    if api_key is None or api_key.account_id != account.id:
        raise ApiKeyRefused("That key does not exist.")
    if api_key.revoked_at is not None:
        raise ApiKeyRefused("That key is already revoked.")
    api_key.revoked_at = datetime.now(UTC)
    record_audit(actor, "api_key.revoked", "api_key", api_key.id, ip=ip,
                 details={"name": api_key.name, "prefix": api_key.prefix,
                          "account_id": account.id})
    db.session.commit()
    return api_key


@dataclass(frozen=True)
class KeyHolder:
    """Who an API request acts for: the key and its account."""

    key_id: int
    account_id: int
    last_used_at: datetime | None


def authenticate_api_key(secret: str) -> KeyHolder | None:
    """Return who an active key's secret acts for, or None for an unknown or revoked key."""
    if not secret.startswith(("bp_live_", "bp_test_")) or len(secret) > 200:
        return None
    digest = key_hash(secret)
    api_key = db.session.scalar(db.select(ApiKey).where(ApiKey.key_hash == digest))
    holder = None
    if (api_key is not None and hmac.compare_digest(api_key.key_hash, digest)
            and api_key.revoked_at is None):
        holder = KeyHolder(api_key.id, api_key.account_id, api_key.last_used_at)
    # End the read: on SQLite a write after a read in one transaction fails at once (instead
    # of waiting) when another worker wrote in between.
    db.session.rollback()
    return holder


def note_key_used(api_key_id: int, last_used_at: datetime | None, now: datetime) -> None:
    """Record the key's use in the current transaction, at most once a minute."""
    if last_used_at is not None and now - last_used_at < LAST_USED_RESOLUTION:
        return
    db.session.execute(db.update(ApiKey).where(ApiKey.id == api_key_id)
                       .values(last_used_at=now))
