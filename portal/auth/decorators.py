"""Role checks for views: who may see a page and who may change things."""
from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from flask import abort
from flask_login import current_user, login_required

from portal.models import Role


def roles_required(*roles: Role) -> Callable:
    """Allow a signed-in user whose role is one of `roles`; everyone else gets 403."""

    def decorator(view: Callable) -> Callable:
        @login_required
        @wraps(view)
        def wrapped(*args, **kwargs):
            if not current_user.has_role(*roles):
                abort(403)
            return view(*args, **kwargs)

        return wrapped

    return decorator


staff_required = roles_required(Role.ADMIN, Role.AUDITOR)
admin_required = roles_required(Role.ADMIN)
customer_required = roles_required(Role.CUSTOMER)


def check_account_access(account_id: int) -> None:
    """Abort with 404 unless the current user may see this account (staff see all)."""
    if current_user.is_staff:
        return
    if current_user.account_id != account_id:
        # 404, not 403: a customer must not learn which account ids exist.
        abort(404)
