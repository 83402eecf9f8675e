"""The account's Stripe customer: created on first need, then reused."""
from __future__ import annotations

from portal.extensions import db
from portal.models import Account
from portal.services import sync
from portal.services.stripe_client import stripe_client


def ensure_stripe_customer(account: Account) -> str:
    """Return the account's Stripe customer id, creating the customer once if needed."""
    if account.stripe_customer_id:
        return account.stripe_customer_id
    owner = account.users[0] if account.users else None
    customer = stripe_client().v1.customers.create(
        params={
            "name": account.name,
            "email": owner.email if owner else None,
            "metadata": {"account_id": str(account.id)},
        },
        # Derived from the account, so a retry or a double click never makes two customers.
        options={"idempotency_key": f"account-{account.id}-customer"},
    )
    locked = db.session.scalar(
        db.select(Account).where(Account.id == account.id).with_for_update()
    )
    if locked.stripe_customer_id is None:
        sync.link_customer(locked, customer.id)
    sync.customer(customer)
    db.session.commit()
    return locked.stripe_customer_id
