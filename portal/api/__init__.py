"""Machine-facing endpoints: /health at the root, the usage API under /api/v1."""
from flask import Blueprint

# /health sits at the root because load balancers probe it there.
bp = Blueprint("api", __name__)
# The versioned JSON API: key-authenticated, CSRF-exempt, errors in one JSON shape.
v1 = Blueprint("v1", __name__, url_prefix="/api/v1")

from portal.api import usage, views  # noqa: E402,F401  (routes register on import)

bp.register_blueprint(v1)
