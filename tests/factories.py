"""Factories: plain functions that build and commit rows with sensible defaults.

Each takes keyword overrides for any column. They need an app context (the `app` fixture).
Mirror rows (subscriptions, invoices, cards, charges) normally arrive through sync from
Stripe; these build them directly for tests about what pages show, not about syncing.
"""
from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from portal.extensions import db
from portal.models import Account, Charge, Invoice, PaymentMethod, Role, Subscription, User
from portal.services.accounts import hash_password

DEFAULT_PASSWORD = "correct horse battery"
_serial = itertools.count(1)
# A fixed moment keeps dates on pages predictable: 15 Nov 2025, 09:30 UTC.
CREATED = datetime(2025, 11, 15, 9, 30, tzinfo=UTC)


def _next() -> int:
    """Return a number no other row built in this run has used."""
    return next(_serial)


def _save(row):
    """Add and commit a row, and return it."""
    db.session.add(row)
    db.session.commit()
    return row


def make_account(name: str | None = None, **fields) -> Account:
    """Build an account (no Stripe customer unless stripe_customer_id is given)."""
    return _save(Account(name=name or f"Account {_next()}", **fields))


def make_user(role: Role = Role.CUSTOMER, email: str | None = None,
              password: str = DEFAULT_PASSWORD, account_name: str | None = None,
              account: Account | None = None, **fields) -> User:
    """Build a user who can sign in with `password`; a customer gets its own account."""
    email = (email or f"{role.value}{_next()}@example.com").strip().lower()
    if role is Role.CUSTOMER and account is None:
        account = make_account(account_name or f"Account of {email}")
    return _save(User(email=email, password_hash=hash_password(password), role=role.value,
                      account=account, **fields))


def _customer_id(account: Account) -> str:
    """Return the account's Stripe customer id, giving it one when it has none."""
    if account.stripe_customer_id is None:
        account.stripe_customer_id = f"cus_test{_next()}"
    return account.stripe_customer_id


def make_subscription(account: Account, status: str = "active", **fields) -> Subscription:
    """Build a monthly USD subscription of the account, in its first period."""
    start = fields.pop("current_period_start", CREATED)
    values = {
        "stripe_subscription_id": f"sub_test{_next()}",
        "stripe_customer_id": _customer_id(account),
        "stripe_price_id": "price_test_monthly",
        "stripe_item_id": f"si_test{_next()}",
        "currency": "usd",
        "current_period_start": start,
        "current_period_end": start + timedelta(days=30),
        "stripe_created": start,
    }
    values.update(fields)
    return _save(Subscription(account_id=account.id, status=status, **values))


def make_invoice(account: Account, status: str = "paid", total: int = 4900, **fields) -> Invoice:
    """Build an invoice of the account: paid in full, or open for its whole total."""
    number = _next()
    paid = total if status == "paid" else 0
    values = {
        "stripe_invoice_id": f"in_test{number}",
        "stripe_customer_id": _customer_id(account),
        "number": f"TEST-{number:04d}",
        "currency": "usd",
        "subtotal": total,
        "amount_due": total,
        "amount_paid": paid,
        "amount_remaining": total - paid if status == "open" else 0,
        "hosted_invoice_url": f"https://invoice.example/{number}",
        "stripe_created": CREATED,
    }
    values.update(fields)
    return _save(Invoice(account_id=account.id, status=status, total=total, **values))


def make_payment_method(account: Account, brand: str = "visa", last4: str = "4242",
                        **fields) -> PaymentMethod:
    """Build a card saved on the account's Stripe customer."""
    values = {
        "stripe_payment_method_id": f"pm_test{_next()}",
        "stripe_customer_id": _customer_id(account),
        "exp_month": 12,
        "exp_year": 2034,
        "stripe_created": CREATED,
    }
    values.update(fields)
    return _save(PaymentMethod(account_id=account.id, brand=brand, last4=last4, **values))


def make_charge(account: Account, amount: int = 4900, status: str = "succeeded",
                **fields) -> Charge:
    """Build a captured card charge of the account."""
    values = {
        "stripe_charge_id": f"ch_test{_next()}",
        "stripe_customer_id": _customer_id(account),
        "currency": "usd",
        "amount_captured": amount if status == "succeeded" else 0,
        "stripe_created": CREATED,
    }
    values.update(fields)
    return _save(Charge(account_id=account.id, amount=amount, status=status, **values))
