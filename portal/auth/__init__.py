"""Sign-up, sign-in, sign-out and password resets."""
from flask import Blueprint

bp = Blueprint("auth", __name__, url_prefix="/auth")

from portal.auth import views  # noqa: E402,F401  (routes register on import)
