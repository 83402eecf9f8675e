"""The one place that knows how the portal reaches Stripe (or the embedded sandbox)."""
from __future__ import annotations

from collections.abc import Mapping


def stripe_mode(config: Mapping) -> str:
    """Return 'live', 'test' or 'sandbox' from the configured secret key."""
    key = config.get("STRIPE_SECRET_KEY") or ""
    if not key:
        return "sandbox"
    if key.startswith(("sk_live_", "rk_live_")):
        return "live"
    return "test"


def payments_configured(config: Mapping) -> bool:
    """Return True when the portal can take payments (Stripe keys, or the embedded sandbox)."""
    if stripe_mode(config) != "sandbox":
        return bool(config.get("STRIPE_PUBLISHABLE_KEY") and config.get("STRIPE_WEBHOOK_SECRET"))
    return bool(config.get("SANDBOX_ENABLED"))
