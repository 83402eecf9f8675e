"""Which of the stored events about one Stripe object carries its newest known state.

Stripe dates events to the second and does not deliver them in order
(docs.stripe.com/webhooks#event-ordering), so several events about one object often share a
`created`. Within one second their order is read from `previous_attributes`, which lists the
old values of every attribute the change touched (docs.stripe.com/api/events/object): an
event whose previous values are exactly another event's object came after it. When that does
not single one state out, the caller asks Stripe for its current copy instead.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from portal.extensions import db
from portal.models import WebhookEvent

# Types after which the object is gone: nothing about it comes later.
DELETION_TYPES = frozenset({
    "payment_method.detached", "customer.deleted", "customer.tax_id.deleted",
    "customer.subscription.deleted",
})


# Statuses that only ever move forward (docs.stripe.com/invoicing/overview#invoice-lifecycle,
# docs.stripe.com/api/charges/object, docs.stripe.com/api/refunds/object).
STATUS_RANK = {
    "invoice": {"draft": 0, "open": 1, "paid": 2, "void": 2, "uncollectible": 2},
    "charge": {"pending": 0, "succeeded": 1, "failed": 1},
    "refund": {"pending": 0, "requires_action": 0, "succeeded": 1, "failed": 1, "canceled": 1},
}


def progress(obj: dict) -> tuple[int, int] | None:
    """Return how far an object of a forward-only kind has come, or None for other kinds.

    Besides the status: an open invoice's payment attempts and a charge's refunded amount
    only grow.
    """
    ranks = STATUS_RANK.get(obj.get("object") or "")
    if ranks is None or obj.get("status") not in ranks:
        return None
    counter = obj.get("attempt_count") if obj["object"] == "invoice" else obj.get(
        "amount_refunded")
    return ranks[obj["status"]], int(counter or 0)


@dataclass(frozen=True)
class Sighting:
    """One state of an object as an event carried it."""

    obj: dict
    created: int
    type: str = ""
    previous: dict | None = None


@dataclass(frozen=True)
class Newest:
    """The newest known state of an object among the events stored about it."""

    created: int
    # The object as the newest event carried it; None when events of that second disagree
    # and their order cannot be told from previous_attributes.
    obj: dict | None


def _matches(obj: Any, previous: Any) -> bool:
    """Tell whether `obj` holds every previous value listed (nested objects compared by key)."""
    if isinstance(previous, dict) and isinstance(obj, dict):
        return all(_matches(obj.get(key), value) for key, value in previous.items())
    return obj == previous


def _follows(later: Sighting, earlier: Sighting) -> bool:
    """Tell whether `later` provably happened after `earlier` (both in the same second)."""
    if later.obj == earlier.obj:
        return False
    if later.type in DELETION_TYPES and earlier.type not in DELETION_TYPES:
        return True
    if earlier.type.endswith(".created") and not later.type.endswith(".created"):
        return True
    later_progress, earlier_progress = progress(later.obj), progress(earlier.obj)
    if later_progress is not None and earlier_progress is not None \
            and later_progress != earlier_progress:
        return later_progress > earlier_progress
    return bool(later.previous) and _matches(earlier.obj, later.previous)


def latest_of(sightings: list[Sighting]) -> dict | None:
    """Return the object of the last of these same-second sightings, or None if unclear."""
    survivors = [one for one in sightings
                 if not any(_follows(other, one) for other in sightings if other is not one)]
    states = {json.dumps(one.obj, sort_keys=True): one.obj for one in survivors}
    return next(iter(states.values())) if len(states) == 1 else None


# Deletions Stripe never undoes; the object they carry is marked `deleted` for the mirror.
TOMBSTONE_TYPES = frozenset({
    "payment_method.detached", "customer.deleted", "customer.tax_id.deleted",
})


def sighting_of(event: dict) -> Sighting:
    """Return the state a Stripe event carries."""
    data = event["data"]
    obj = data["object"]
    if event["type"] in TOMBSTONE_TYPES:
        obj = {**obj, "deleted": True}
    return Sighting(obj, event["created"], event["type"], data.get("previous_attributes"))


def newest_known(object_id: str, also: Sighting | None = None) -> Newest | None:
    """Return the newest state of an object among its stored events (and `also`, if given)."""
    newest_second = db.session.scalar(db.select(db.func.max(WebhookEvent.stripe_created)).where(
        WebhookEvent.object_id == object_id))
    if also is not None and (newest_second is None or also.created > newest_second):
        return Newest(also.created, also.obj)
    if newest_second is None:
        return None
    sightings = [sighting_of(json.loads(payload)) for payload in db.session.scalars(
        db.select(WebhookEvent.payload).where(WebhookEvent.object_id == object_id,
                                              WebhookEvent.stripe_created == newest_second))]
    if also is not None and also.created == newest_second:
        sightings.append(also)
    return Newest(newest_second, latest_of(sightings))
