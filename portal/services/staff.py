"""What admins do to accounts and users; every change is audited."""
from __future__ import annotations

from sqlalchemy import func

from portal.extensions import db
from portal.models import Account, Role, User
from portal.services.audit import record_audit
from portal.services.sessions import end_all_sessions


class LastAdminError(ValueError):
    """Raised when a change would leave the portal with no active admin."""


def list_accounts() -> list[tuple[Account, int]]:
    """Return every account with its number of users, newest first."""
    query = (
        db.select(Account, func.count(User.id))
        .outerjoin(User, User.account_id == Account.id)
        .group_by(Account.id)
        .order_by(Account.id.desc())
    )
    return [(account, count) for account, count in db.session.execute(query)]


def list_staff() -> list[User]:
    """Return admins and auditors."""
    query = db.select(User).where(User.role != Role.CUSTOMER.value).order_by(User.email)
    return list(db.session.scalars(query))


def _active_admin_count() -> int:
    """Return how many active admins exist."""
    query = db.select(func.count(User.id)).where(User.role == Role.ADMIN.value, User.active)
    return db.session.scalar(query) or 0


def set_user_active(actor: User, user: User, active: bool, ip: str | None = None) -> None:
    """Enable or disable sign-in for a user, keeping at least one active admin."""
    if user.active == active:
        return
    if not active and user.role == Role.ADMIN.value and _active_admin_count() <= 1:
        raise LastAdminError("The last active admin cannot be disabled.")
    user.active = active
    if not active:
        end_all_sessions(user)
    action = "user.enabled" if active else "user.disabled"
    record_audit(actor, action, "user", user.id, ip=ip, account_id=user.account_id,
                 details={"email": user.email})
    db.session.commit()


def set_staff_role(actor: User, user: User, role: Role, ip: str | None = None) -> None:
    """Switch a staff user between admin and auditor, keeping at least one active admin."""
    if user.role == Role.CUSTOMER.value or role is Role.CUSTOMER:
        raise ValueError("Only staff users change between admin and auditor.")
    if user.role == role.value:
        return
    if user.role == Role.ADMIN.value and user.active and _active_admin_count() <= 1:
        raise LastAdminError("The last active admin cannot be made an auditor.")
    previous = user.role
    user.role = role.value
    record_audit(
        actor, "user.role_changed", "user", user.id, ip=ip,
        details={"email": user.email, "from": previous, "to": role.value},
    )
    db.session.commit()
