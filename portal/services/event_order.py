"""Which of the stored events about one Stripe object carries its newest known state.

Stripe dates events to the second and does not deliver them in order
(docs.stripe.com/webhooks#event-ordering), so several events about one object often share a
`created`. Within one second their order is read from `previous_attributes`, which lists the
old values of every attribute the change touched (docs.stripe.com/api/events/object): a
change can only come right after a state holding those values. When that does not single one
final state out, the caller asks Stripe for its current copy instead.
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


def _can_follow(earlier: Sighting, later: Sighting) -> bool:
    """Tell whether `later` may come right after `earlier` (both in the same second)."""
    if earlier.type in DELETION_TYPES or later.type.endswith(".created"):
        return False
    later_progress, earlier_progress = progress(later.obj), progress(earlier.obj)
    if later_progress is not None and earlier_progress is not None \
            and later_progress < earlier_progress:
        return False
    # The state just before a change is the one its previous_attributes describe.
    return not later.previous or _matches(earlier.obj, later.previous)


# Orders explored before the same-second events are called unclear (Stripe is asked then).
SEARCH_BUDGET = 5000


def latest_of(sightings: list[Sighting]) -> dict | None:
    """Return the object of the last of these same-second sightings, or None if unclear.

    Every order of the sightings in which each change follows the state its
    previous_attributes describe (creations first, deletions last, forward-only statuses
    never going back) is a possible history; the answer is the final state when all
    possible histories end in the same one.
    """
    unique: dict[str, Sighting] = {}
    for one in sightings:
        unique.setdefault(json.dumps([one.obj, one.previous], sort_keys=True), one)
    candidates = list(unique.values())
    if len({json.dumps(one.obj, sort_keys=True) for one in candidates}) == 1:
        return candidates[0].obj
    endings: dict[str, dict] = {}
    budget = [SEARCH_BUDGET]

    def extend(path: list[Sighting], left: list[Sighting]) -> bool:
        """Walk the possible orders; return False to stop (unclear or out of budget)."""
        budget[0] -= 1
        if budget[0] < 0:
            return False
        if not left:
            endings.setdefault(json.dumps(path[-1].obj, sort_keys=True), path[-1].obj)
            return len(endings) == 1
        for index, one in enumerate(left):
            if path and not _can_follow(path[-1], one):
                continue
            if not extend([*path, one], left[:index] + left[index + 1:]):
                return False
        return True

    if not extend([], candidates) or len(endings) != 1:
        return None
    return next(iter(endings.values()))


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
