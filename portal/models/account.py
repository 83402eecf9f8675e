"""Accounts (the organisation that pays) and the users who sign in to them."""
from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from flask_login import UserMixin
from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, func, true
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.models.mirror import StripeMirror
from portal.models.types import UTCDateTime, utcnow


class Role(StrEnum):
    """What a user may see and do."""

    CUSTOMER = "customer"
    ADMIN = "admin"
    AUDITOR = "auditor"


class Account(StripeMirror, db.Model):
    """An organisation that pays; Stripe's customer is mirrored one to one."""

    __tablename__ = "accounts"
    # The account exists before its Stripe customer does.
    __stripe_id__ = "stripe_customer_id"
    __stripe_optional__ = True

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    # Mirrored from the Stripe customer's invoice_settings.default_payment_method.
    default_payment_method_id: Mapped[str | None] = mapped_column(String(255))
    # Mirrored from the Stripe customer's balance, in minor units of balance_currency: negative
    # is credit that Stripe applies to the next invoices before charging the card.
    balance: Mapped[int] = mapped_column(default=0, server_default="0")
    balance_currency: Mapped[str | None] = mapped_column(String(3))
    # Billing details, mirrored from the Stripe customer (name, email, address).
    legal_name: Mapped[str | None] = mapped_column(String(200))
    billing_email: Mapped[str | None] = mapped_column(String(320))
    address: Mapped[dict | None] = mapped_column(JSON)
    # The billing email may turn off reminders; receipts and failure notices always go.
    reminder_emails: Mapped[bool] = mapped_column(default=True, server_default=true())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    @property
    def credit_balance(self) -> int:
        """Return the credit Stripe holds for this account (0 when it owes a debit)."""
        return max(0, -self.balance)

    def forget_stripe_object(self) -> None:
        """Unlink the account from its deleted Stripe customer; the account itself stays.

        What was mirrored from the customer (billing details, balance) went with it.
        """
        self.stripe_customer_id = None
        self.default_payment_method_id = None
        self.legal_name = self.billing_email = self.address = None
        self.balance = 0

    users: Mapped[list[User]] = relationship(back_populates="account", order_by="User.id")

    __table_args__ = (
        CheckConstraint("length(name) > 0", name="name_not_empty"),
        # The admin accounts list pages by signup date with a keyset (created_at, id).
        Index("ix_accounts_created_at_id", "created_at", "id"),
    )


class User(UserMixin, db.Model):
    """A person who signs in: a customer of one account, or staff (admin, auditor)."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(20), default=Role.CUSTOMER.value)
    account_id: Mapped[int | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="RESTRICT"), index=True
    )
    active: Mapped[bool] = mapped_column(default=True, server_default=true())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Part of every session's identity: raising it signs the user out everywhere at once.
    session_version: Mapped[int] = mapped_column(default=0, server_default="0")

    account: Mapped[Account | None] = relationship(back_populates="users")

    __table_args__ = (
        CheckConstraint("role IN ('customer', 'admin', 'auditor')", name="role_known"),
        # A customer always belongs to an account; staff see every account instead.
        CheckConstraint(
            "role != 'customer' OR account_id IS NOT NULL", name="customer_has_account"
        ),
        CheckConstraint("email = lower(email)", name="email_lowercase"),
    )

    def get_id(self) -> str:
        """Return the session identity: id and session version, so old sessions stop matching."""
        return f"{self.id}:{self.session_version}"

    @property
    def is_active(self) -> bool:
        """Tell Flask-Login whether this user may sign in."""
        return self.active

    @property
    def is_staff(self) -> bool:
        """Return True for admins and auditors, who see every account."""
        return self.role in (Role.ADMIN, Role.AUDITOR)

    def has_role(self, *roles: Role) -> bool:
        """Return True when the user's role is one of `roles`."""
        return self.role in {role.value for role in roles}


def find_user_by_email(email: str) -> User | None:
    """Return the user with this email, compared case-insensitively."""
    return db.session.scalar(db.select(User).where(User.email == func.lower(email.strip())))
