"""Prepaid billing credits: each account's running balance and its append-only ledger."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    UniqueConstraint,
    event,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import db
from portal.models.types import UTCDateTime, utcnow

LEDGER_KINDS = ("grant", "draw_down", "expiry", "void", "reinstated")


class CreditBalance(db.Model):
    """An account's credit balance (the sum of its ledger) and its hard-limit choice.

    Every ledger entry locks this row first (SELECT ... FOR UPDATE on PostgreSQL), so
    concurrent draw-downs queue and the balance, checked by the database, never goes below 0.
    """

    __tablename__ = "credit_balances"

    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    currency: Mapped[str] = mapped_column(String(3))
    balance: Mapped[int] = mapped_column(BigInteger, default=0)
    # When on, the usage API refuses events (402) once included usage and credits are used up.
    hard_limit: Mapped[bool] = mapped_column(default=False, server_default=false())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (
        CheckConstraint("balance >= 0", name="balance_not_negative"),
        CheckConstraint("currency = lower(currency)", name="currency_lowercase"),
    )


class CreditLedgerEntry(db.Model):
    """One movement of an account's credits, in minor units: never changed once written.

    `amount` is signed (grants and reinstated credits add, draw-downs, expiries and voids
    take away); `balance_after` is the account's balance once the entry applied. `reference`
    makes each movement happen once per account (a Stripe grant or balance transaction id,
    a draw-down's own reference).
    """

    __tablename__ = "credit_ledger_entries"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    kind: Mapped[str] = mapped_column(String(20))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    balance_after: Mapped[int] = mapped_column(BigInteger)
    reference: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(String(300), default="")
    stripe_credit_grant_id: Mapped[str | None] = mapped_column(String(255))
    # A pack bought through Checkout: its session grants credits once, whatever the retries.
    stripe_checkout_session_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (
        UniqueConstraint("account_id", "reference", name="uq_credit_ledger_account_reference"),
        Index("ix_credit_ledger_account_id_id", "account_id", "id"),
        CheckConstraint("amount != 0", name="amount_not_zero"),
        CheckConstraint("balance_after >= 0", name="balance_after_not_negative"),
        CheckConstraint("kind IN ('grant', 'draw_down', 'expiry', 'void', 'reinstated')",
                        name="kind_known"),
        CheckConstraint("kind NOT IN ('grant', 'reinstated') OR amount > 0",
                        name="credits_add"),
        CheckConstraint("kind IN ('grant', 'reinstated') OR amount < 0", name="debits_take"),
    )


@event.listens_for(CreditLedgerEntry, "before_update")
@event.listens_for(CreditLedgerEntry, "before_delete")
def _refuse_rewrites(_mapper, _connection, entry: CreditLedgerEntry) -> None:
    """Keep the ledger append-only: a correction is a new entry, never an edit."""
    raise ValueError(f"credit ledger entry {entry.id} is append-only")
