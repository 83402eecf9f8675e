"""Usage metering: account API keys, raw usage events and their hourly aggregates."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.models.account import Account, User
from portal.models.types import UTCDateTime, utcnow

# SQLite only autoincrements an INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit key.
EventId = BigInteger().with_variant(Integer(), "sqlite")


class ApiKey(db.Model):
    """A secret an account's programs present to the usage API; only its sha256 is kept."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    # What people recognise the key by on the page: 'bp_test_' and the secret's first characters.
    prefix: Mapped[str] = mapped_column(String(32))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    account: Mapped[Account] = relationship()
    created_by: Mapped[User | None] = relationship()

    __table_args__ = (CheckConstraint("length(name) > 0", name="name_not_empty"),)

    @property
    def is_active(self) -> bool:
        """Return True until the key is revoked."""
        return self.revoked_at is None


class UsageEvent(db.Model):
    """One usage event as the account sent it; unique per account by its identifier."""

    __tablename__ = "usage_events"

    id: Mapped[int] = mapped_column(EventId, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    meter: Mapped[str] = mapped_column(String(64))
    quantity: Mapped[int] = mapped_column(BigInteger)
    timestamp: Mapped[datetime] = mapped_column(UTCDateTime())
    identifier: Mapped[str] = mapped_column(String(100))
    event_metadata: Mapped[dict] = mapped_column("metadata", JSON, default=dict)
    api_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id"))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (
        # The idempotency key: a replayed event is refused by the database, not by a lookup.
        UniqueConstraint("account_id", "identifier", name="uq_usage_events_account_identifier"),
        Index("ix_usage_events_account_meter_timestamp", "account_id", "meter", "timestamp"),
        CheckConstraint("quantity >= 0", name="quantity_not_negative"),
    )


class UsageHourly(db.Model):
    """The sum, count and latest value of an account's events for one meter in one hour."""

    __tablename__ = "usage_hourly"

    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    meter: Mapped[str] = mapped_column(String(64), primary_key=True)
    hour: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    quantity: Mapped[int] = mapped_column(BigInteger, default=0)
    event_count: Mapped[int] = mapped_column(BigInteger, default=0)
    # For `last` meters: the value of the hour's latest event and that event's time.
    last_quantity: Mapped[int] = mapped_column(BigInteger, default=0)
    last_at: Mapped[datetime] = mapped_column(UTCDateTime())
