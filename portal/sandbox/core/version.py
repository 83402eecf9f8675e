"""The one Stripe API version the sandbox speaks: the version the installed ``stripe`` pins."""

from __future__ import annotations

API_VERSION = "2026-10-28.endive"
