"""Small helpers the portal's tests share: forms, the environment, browsers and the sandbox."""
from __future__ import annotations

import os
import re
import socket

import pytest
from sqlalchemy import text

CSRF_INPUT = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def csrf_from(client, path: str) -> str:
    """Return the CSRF token of the form on the page at `path`."""
    page = client.get(path)
    match = CSRF_INPUT.search(page.get_data(as_text=True))
    assert match, f"no CSRF token on {path} (status {page.status_code})"
    return match.group(1)


def skip_or_fail(reason: str, required_by: str) -> None:
    """Skip with `reason`, or fail when the environment variable `required_by` is set (CI)."""
    if os.environ.get(required_by):
        pytest.fail(f"{reason} ({required_by} is set, so this may not be skipped)")
    pytest.skip(reason)


def free_port() -> int:
    """Return a TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def sign_in(page, base: str, email: str, password: str) -> None:
    """Sign in through the login form."""
    page.goto(f"{base}/auth/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def price_id(stripe_api, lookup_key: str) -> str:
    """Return the Stripe price id of a catalog lookup_key."""
    return stripe_api.v1.prices.list(params={"lookup_keys": [lookup_key]}).data[0].id


def customer_with_card(stripe_api, account, card: str) -> str:
    """Give the account a Stripe customer whose default card is `card`; return the card id."""
    from portal.services.customers import ensure_stripe_customer

    customer_id = ensure_stripe_customer(account)
    pm = stripe_api.v1.payment_methods.attach(card, params={"customer": customer_id})
    stripe_api.v1.customers.update(customer_id, params={
        "invoice_settings": {"default_payment_method": pm.id}})
    return pm.id


def clear_append_only_table(connection, table) -> None:
    """Empty a table whose triggers refuse DELETE (the audit log), between tests only.

    PostgreSQL's TRUNCATE fires no row triggers; SQLite has no TRUNCATE, so its triggers are
    dropped and created again around the delete, inside the caller's transaction.
    """
    if connection.dialect.name == "postgresql":
        connection.execute(text(f'TRUNCATE "{table.name}"'))
        return
    triggers = connection.execute(text(
        "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = :table"),
        {"table": table.name}).all()
    for name, _sql in triggers:
        connection.execute(text(f'DROP TRIGGER "{name}"'))
    connection.execute(table.delete())
    for _name, sql in triggers:
        connection.execute(text(sql))
