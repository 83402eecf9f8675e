"""Stripe-looking identifiers (``cus_``, ``pi_``, ``evt_``, ``req_`` ...)."""

from __future__ import annotations

import secrets
import string

_ALPHABET = string.ascii_letters + string.digits


def random_token(length: int = 24) -> str:
    """Return a random alphanumeric token."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def new_id(prefix: str, length: int = 24) -> str:
    """Return a fresh id with Stripe's prefix convention, e.g. ``new_id("cus")``."""
    return f"{prefix}_{random_token(length)}"


def client_secret(obj_id: str) -> str:
    """Return a client secret for an intent, shaped like ``pi_x_secret_y``."""
    return f"{obj_id}_secret_{random_token(25)}"
