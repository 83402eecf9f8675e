"""Reconciliation: compare the mirror with Stripe's recent objects and repair drift.

Webhooks keep the mirror current, but a lost delivery, a failed handler that was never
retried or a hand edit of the database leave it wrong with nothing to correct it. This
lists what Stripe created in the last days (customers, subscriptions of every status,
invoices, charges, refunds, and the cards of the customers among them), writes each object
through the same `sync` functions the webhooks use, and reports the rows that changed.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import inspect

from portal.extensions import db
from portal.models import Account, Charge, Invoice, PaymentMethod, Refund, Subscription
from portal.services import sync
from portal.services.refunds import follow_stripe_refund
from portal.services.stripe_client import InvalidRequestError, as_dict, stripe_client
from portal.services.webhooks import invoice_extras

# Columns that record the bookkeeping of a write, not what Stripe said.
BOOKKEEPING = frozenset({"id", "version", "synced_at", "created_at", "updated_at"})
# Personal details: the report says they differed, never what they hold.
PERSONAL = frozenset({"billing_email", "legal_name", "address", "fingerprint"})
PAGE_SIZE = 100


@dataclass(frozen=True)
class Repair:
    """One mirror row reconcile changed: the Stripe type and id, and what differed."""

    kind: str
    stripe_id: str
    what: str

    def __str__(self) -> str:
        return f"{self.kind} {self.stripe_id}: {self.what}"


@dataclass
class Report:
    """What one reconcile run looked at and changed."""

    since: datetime
    checked: int = 0
    repairs: list[Repair] = field(default_factory=list)
    unmatched: list[Repair] = field(default_factory=list)


def _snapshot(row) -> dict[str, Any] | None:
    """Return the row's column values that come from Stripe (None for no row)."""
    if row is None:
        return None
    return {attr.key: getattr(row, attr.key) for attr in inspect(type(row)).column_attrs
            if attr.key not in BOOKKEEPING}


def _describe(before: dict | None, after: dict | None) -> str:
    """Say in one line how a row changed."""
    if before is None:
        return "missing from the mirror; restored"
    if after is None:
        return "no longer belongs in the mirror; removed"
    changes = []
    for key in sorted(after):
        if before.get(key) != after[key]:
            old, new = before.get(key), after[key]
            if key in PERSONAL or isinstance(old, list | dict) or isinstance(new, list | dict):
                changes.append(f"{key} differed")
            else:
                changes.append(f"{key} {old!r} -> {new!r}")
    return "; ".join(changes)


def _stored(model, stripe_id: str):
    """Return the mirror row for a Stripe id, if any."""
    return db.session.scalar(db.select(model).where(model.stripe_id_column() == stripe_id))


def repair(model, kind: str, stripe_id: str, write: Callable[[], object]) -> Repair | None:
    """Run one sync write and return what it changed, or None when the row already agreed.

    When nothing differed, the row keeps its version and sync time, so a run over a mirror
    in agreement changes nothing at all.
    """
    row = _stored(model, stripe_id)
    before = _snapshot(row)
    bookkeeping = (row.version, row.synced_at) if row is not None else None
    written = write()
    after = _snapshot(written)
    if before == after:
        if row is not None and bookkeeping is not None:
            row.version, row.synced_at = bookkeeping
        db.session.commit()
        return None
    db.session.commit()
    return Repair(kind, stripe_id, _describe(before, after))


def _listed(page) -> Iterator[tuple[dict, int]]:
    """Yield (object, when listed) for every object of a Stripe list, from its first page on."""
    while True:
        listed_at = int(time.time())
        for obj in page.data:
            yield as_dict(obj), listed_at
        if not page.has_more:
            return
        page = page.next_page()


def _version(model, stripe_id: str, listed_at: int) -> int:
    """Return the version to write a listed object with: fetched now, so not older than the row.

    (A test clock's events run ahead of the wall clock a response is dated by.)
    """
    stored = db.session.scalar(db.select(model.version).where(
        model.stripe_id_column() == stripe_id))
    return max(stored or 0, listed_at)


def reconcile(days: int = 7, echo: Callable[[Repair], None] | None = None) -> Report:
    """Compare the mirror with what Stripe created in the last `days` and repair the drift."""
    client = stripe_client().v1
    since = datetime.now(UTC) - timedelta(days=days)
    created = {"gte": int(since.timestamp())}
    report = Report(since=since)
    customers: set[str] = set()

    def record(found: Repair | None) -> None:
        report.checked += 1
        if found is not None:
            report.repairs.append(found)
            if echo is not None:
                echo(found)

    def mirror_of(model, kind: str, service, params: dict,
                  write: Callable[[dict, int], object]) -> None:
        seen: set[str] = set()
        first = service.list(params={"created": created, "limit": PAGE_SIZE, **params})
        for data, listed_at in _listed(first):
            seen.add(data["id"])
            customer = sync._id(data.get("customer"))
            if customer:
                customers.add(customer)
            version = _version(model, data["id"], listed_at)
            record(repair(model, kind, data["id"],
                          lambda data=data, version=version: write(data, version)))
        _check_unlisted(model, kind, service, since, seen, write, record, report)

    mirror_of(Account, "customer", client.customers, {}, sync.customer)
    mirror_of(Subscription, "subscription", client.subscriptions, {"status": "all"},
              sync.subscription)
    mirror_of(Invoice, "invoice", client.invoices, {},
              lambda data, version: sync.invoice(data, version,
                                                 **invoice_extras(stripe_client, data)))
    mirror_of(Charge, "charge", client.charges, {}, sync.charge)
    mirror_of(Refund, "refund", client.refunds, {}, _write_refund)
    for customer_id in sorted(customers):
        _reconcile_cards(client, customer_id, record)
    return report


def _write_refund(data: dict, version: int):
    """Mirror a refund and move the portal's refund record along, as its webhook does."""
    row = sync.refund(data, version)
    follow_stripe_refund(row)
    return row


def _check_unlisted(model, kind: str, service, since: datetime, seen: set[str],
                    write: Callable[[dict, int], object], record, report: Report) -> None:
    """Fetch mirror rows of the window that Stripe's list did not return, one by one."""
    id_column = model.stripe_id_column()
    stored = db.session.scalars(db.select(id_column).where(
        model.stripe_created >= since, id_column.is_not(None))).all()
    for stripe_id in sorted(set(stored) - seen):
        try:
            fresh = service.retrieve(stripe_id)
        except InvalidRequestError:
            # Gone at Stripe (a deleted draft, another account's key): say so, keep the row.
            report.unmatched.append(Repair(kind, stripe_id, "in the mirror, not at Stripe"))
            continue
        data = as_dict(fresh)
        version = _version(model, stripe_id, int(time.time()))
        record(repair(model, kind, stripe_id, lambda data=data, version=version:
                      write(data, version)))


def _reconcile_cards(client, customer_id: str, record) -> None:
    """Mirror a customer's attached cards and drop the rows of cards no longer attached."""
    if sync.account_for_customer(customer_id) is None:
        return
    listed: set[str] = set()
    first = client.customers.payment_methods.list(customer_id, params={
        "type": "card", "limit": PAGE_SIZE})
    for data, listed_at in _listed(first):
        listed.add(data["id"])
        version = _version(PaymentMethod, data["id"], listed_at)
        record(repair(PaymentMethod, "payment_method", data["id"],
                      lambda data=data, version=version: sync.payment_method(data, version)))
    stored = db.session.scalars(db.select(PaymentMethod.stripe_payment_method_id).where(
        PaymentMethod.stripe_customer_id == customer_id)).all()
    for stripe_id in sorted(set(stored) - listed):
        try:
            data = as_dict(client.payment_methods.retrieve(stripe_id))
        except InvalidRequestError:
            data = {"id": stripe_id, "customer": None}
        version = _version(PaymentMethod, stripe_id, int(time.time()))
        record(repair(PaymentMethod, "payment_method", stripe_id,
                      lambda data=data, version=version: sync.payment_method(data, version)))

