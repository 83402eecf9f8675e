"""Audit entries for staff and customer actions on money or access."""
from __future__ import annotations

from portal.extensions import db
from portal.models import AuditEntry, User


def record_audit(
    actor: User | None,
    action: str,
    target_type: str,
    target_id: str | int,
    *,
    amount: int | None = None,
    currency: str | None = None,
    stripe_request_id: str | None = None,
    details: dict | None = None,
    ip: str | None = None,
) -> AuditEntry:
    """Add an audit entry to the current transaction; the caller commits with its change."""
    entry = AuditEntry(
        actor_id=actor.id if actor is not None else None,
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        amount=amount,
        currency=currency,
        stripe_request_id=stripe_request_id,
        details=details or {},
        ip_address=ip,
    )
    db.session.add(entry)
    return entry


def recent_audit_entries(limit: int = 50, before_id: int | None = None) -> list[AuditEntry]:
    """Return audit entries newest first, paged by id."""
    query = db.select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if before_id is not None:
        query = query.where(AuditEntry.id < before_id)
    query = query.options(db.joinedload(AuditEntry.actor))
    return list(db.session.scalars(query))
