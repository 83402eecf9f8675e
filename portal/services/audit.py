"""Audit entries for staff and customer actions on money or access.

The log is append-only: this module adds entries and reads them, nothing here or anywhere
else in the portal updates or deletes one, and the database's triggers refuse both.
"""
from __future__ import annotations

from portal.extensions import db
from portal.models import AuditEntry, User
from portal.models.account import find_user_by_email


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
    account_id: int | None = None,
) -> AuditEntry:
    """Add an audit entry to the current transaction; the caller commits with its change.

    The account defaults to the acting customer's own, so customer actions are found on
    their account's page without every caller naming it.
    """
    if account_id is None and actor is not None and not actor.is_staff:
        account_id = actor.account_id
    entry = AuditEntry(
        actor_id=actor.id if actor is not None else None,
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        amount=amount,
        currency=currency.lower() if currency else None,
        stripe_request_id=stripe_request_id,
        details=details or {},
        ip_address=ip,
        account_id=account_id,
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


def audit_staff_sign_in(user: User, ip: str | None) -> None:
    """Record that an admin or auditor signed in (customers' sign-ins are not audited)."""
    if user.is_staff:
        record_audit(user, "staff.signed_in", "user", user.id, ip=ip,
                     details={"email": user.email, "role": user.role})
        db.session.commit()


def audit_failed_sign_in(email: str, reason: str, ip: str | None) -> None:
    """Record a failed sign-in: the address typed, why it failed and from where."""
    user = find_user_by_email(email)
    record_audit(None, "signin.failed", "user", user.id if user else "unknown", ip=ip,
                 account_id=user.account_id if user else None,
                 details={"email": email.strip().lower()[:320], "reason": reason})
    db.session.commit()


def audit_failed_step_up(user: User, ip: str | None, path: str) -> None:
    """Record a wrong password typed to confirm money movement (a refund step-up)."""
    record_audit(user, "step_up.failed", "user", user.id, ip=ip, details={"path": path})
    db.session.commit()
