"""Reading the audit log: filtered keyset pages for staff and a streamed CSV export."""
from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from portal.extensions import db
from portal.models import AuditEntry, User

AUDIT_PAGE_SIZE = 50
# Rows the CSV export reads per query: memory stays flat however long the log grows.
EXPORT_BATCH = 1000
CSV_COLUMNS = ("id", "created_at", "actor", "action", "account_id", "target_type",
               "target_id", "amount", "currency", "ip_address", "stripe_request_id", "details")


class BadAuditFilter(ValueError):
    """A filter of the audit log that cannot be read (the message says which)."""


@dataclass
class AuditFilter:
    """What a staff member narrows the audit log to; every part optional."""

    actor: str | None = None
    action: str | None = None
    account_id: int | None = None
    since: date | None = None
    until: date | None = None

    @classmethod
    def from_args(cls, args) -> AuditFilter:
        """Read the filter from query-string arguments; raise BadAuditFilter on nonsense."""
        account = (args.get("account") or "").strip()
        if account and not account.isdigit():
            raise BadAuditFilter("The account is an account number, like 42.")
        since, until = _day(args.get("since"), "from"), _day(args.get("until"), "to")
        if since and until and since > until:
            raise BadAuditFilter("The 'from' date is after the 'to' date.")
        return cls(actor=(args.get("actor") or "").strip().lower() or None,
                   action=(args.get("action") or "").strip() or None,
                   account_id=int(account) if account else None, since=since, until=until)

    def query_args(self) -> dict[str, str]:
        """Return the filter as query-string arguments (for next-page and export links)."""
        values = {"actor": self.actor, "action": self.action,
                  "account": self.account_id, "since": self.since, "until": self.until}
        return {key: str(value) for key, value in values.items() if value not in (None, "")}


def _day(text: str | None, label: str) -> date | None:
    """Return a YYYY-MM-DD date, or None when empty; raise BadAuditFilter otherwise."""
    if not text or not text.strip():
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError as exc:
        raise BadAuditFilter(f"The '{label}' date must look like 2026-11-29.") from exc


def _filtered(audit_filter: AuditFilter):
    """Return the select of entries matching the filter (unordered, unlimited)."""
    query = db.select(AuditEntry)
    if audit_filter.actor:
        if audit_filter.actor == "system":
            query = query.where(AuditEntry.actor_id.is_(None))
        else:
            query = query.where(AuditEntry.actor_id.in_(
                db.select(User.id).where(User.email == audit_filter.actor)))
    if audit_filter.action:
        # "refund" finds every refund.* action; "refund.sent" only that one.
        action = audit_filter.action
        query = query.where(AuditEntry.action.startswith(action.rstrip(".") + ".")
                            | (AuditEntry.action == action))
    if audit_filter.account_id is not None:
        query = query.where(AuditEntry.account_id == audit_filter.account_id)
    if audit_filter.since:
        query = query.where(AuditEntry.created_at >= datetime.combine(
            audit_filter.since, time.min, tzinfo=UTC))
    if audit_filter.until:
        query = query.where(AuditEntry.created_at < datetime.combine(
            audit_filter.until + timedelta(days=1), time.min, tzinfo=UTC))
    return query


@dataclass
class AuditPage:
    """A page of audit entries, newest first, and the id the next page starts below."""

    entries: list[AuditEntry] = field(default_factory=list)
    next_before: int | None = None


def audit_page(audit_filter: AuditFilter, before_id: int | None = None,
               per_page: int = AUDIT_PAGE_SIZE) -> AuditPage:
    """Return a page of matching entries below `before_id` by keyset on id (no OFFSET)."""
    query = _filtered(audit_filter)
    if before_id is not None:
        query = query.where(AuditEntry.id < before_id)
    query = (query.order_by(AuditEntry.id.desc()).limit(per_page + 1)
             .options(db.joinedload(AuditEntry.actor)))
    rows = list(db.session.scalars(query))
    page = AuditPage(rows[:per_page])
    if len(rows) > per_page:
        page.next_before = rows[per_page - 1].id
    return page


def account_audit_entries(account_id: int, limit: int = 100) -> list[AuditEntry]:
    """Return an account's newest audit entries (its page links to the rest)."""
    return audit_page(AuditFilter(account_id=account_id), per_page=limit).entries


def _cell(value: str) -> str:
    """Return a text cell a spreadsheet will not run as a formula (OWASP CSV injection)."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def audit_csv(audit_filter: AuditFilter) -> Iterator[str]:
    """Yield the matching entries as CSV, newest first, one chunk per EXPORT_BATCH rows.

    Each batch is its own keyset query over plain columns (no ORM objects kept), so no cursor
    stays open across the response and memory holds one batch whatever the log's size.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    yield buffer.getvalue()
    entries = _filtered(audit_filter).subquery()
    actor = db.aliased(User)
    before: int | None = None
    while True:
        query = (db.select(entries.c.id, entries.c.created_at, actor.email, entries.c.action,
                           entries.c.account_id, entries.c.target_type, entries.c.target_id,
                           entries.c.amount, entries.c.currency, entries.c.ip_address,
                           entries.c.stripe_request_id, entries.c.details)
                 .outerjoin(actor, actor.id == entries.c.actor_id))
        if before is not None:
            query = query.where(entries.c.id < before)
        rows = db.session.execute(query.order_by(entries.c.id.desc()).limit(EXPORT_BATCH)).all()
        if not rows:
            return
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        for (entry_id, created_at, email, action, account_id, target_type, target_id, amount,
             currency, ip_address, request_id, details) in rows:
            writer.writerow((
                entry_id, created_at.isoformat(), email or "system", action, account_id or "",
                _cell(target_type), _cell(target_id), "" if amount is None else amount,
                currency or "", ip_address or "", request_id or "",
                _cell(json.dumps(details or {}, sort_keys=True, default=str))))
        yield buffer.getvalue()
        before = rows[-1][0]
