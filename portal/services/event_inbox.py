"""Keeping the webhook inbox small: processed events are pruned once Stripe stops retrying."""
from __future__ import annotations

from datetime import timedelta

from portal.extensions import db
from portal.models import WebhookEvent
from portal.models.types import utcnow

# Stripe retries a delivery for up to three days (docs.stripe.com/webhooks#retries): a
# processed event must be kept at least that long to recognise a re-delivery as a duplicate.
MIN_KEEP_DAYS = 3


def prune_events(days: int) -> int:
    """Delete processed and ignored events received more than `days` days ago; return how many.

    Failed and pending events are kept whatever their age: they are work still to do.
    """
    if days < MIN_KEEP_DAYS:
        raise ValueError(f"keep events at least {MIN_KEEP_DAYS} days: Stripe retries that long")
    cutoff = utcnow() - timedelta(days=days)
    result = db.session.execute(db.delete(WebhookEvent).where(
        WebhookEvent.status.in_(("processed", "ignored")), WebhookEvent.received_at < cutoff))
    db.session.commit()
    return result.rowcount
