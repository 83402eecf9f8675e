"""Customer billing pages."""
from flask import Blueprint

bp = Blueprint("billing", __name__, url_prefix="/billing")

from portal.billing import api_keys, payment_methods, views  # noqa: E402,F401  (routes register on import)
