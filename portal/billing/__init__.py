"""Customer billing pages."""
from flask import Blueprint

bp = Blueprint("billing", __name__, url_prefix="/billing")

from portal.billing import (  # noqa: E402,F401  (routes register on import)
    api_keys,
    credits,
    invoices,
    payment_methods,
    settings,
    usage,
    views,
)
