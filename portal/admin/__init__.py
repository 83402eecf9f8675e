"""Staff pages: accounts, users and the audit log (admins change, auditors read)."""
from flask import Blueprint

bp = Blueprint("admin", __name__, url_prefix="/admin")

from portal.admin import audit_log, refunds, reports, views  # noqa: E402,F401  (routes register on import)
