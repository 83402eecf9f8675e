"""Machine-facing endpoints: health now, the JSON API as it grows."""
from flask import Blueprint

# /health sits at the root because load balancers probe it there.
bp = Blueprint("api", __name__)

from portal.api import views  # noqa: E402,F401  (routes register on import)
