"""Which mirror rows hold a copy fetched from Stripe rather than one an event carried.

Webhook handlers apply the newest state the stored events show (services.event_order). Two
things make that unsafe for one object within one second: a row written from a copy fetched
from the API may be newer than every event of its second, and a later event of that second
may or may not come after it. So every write of a fetched copy leaves a mark (its version,
and when Stripe was asked for it, if known):

- a row whose version is newer than its mark (or that has none) was written from events, and
  the newest event of its second is at least as new as it;
- an event received before the mark's `asked_at` is covered by the fetched copy: Stripe sends
  an event after the change it reports, and this one reached the portal before it asked, so
  its state is not newer than the copy. This is what makes a burst of events about one object
  cost one fetch, whatever order they come in (docs.stripe.com/webhooks#event-ordering).
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime

from portal.extensions import db
from portal.models import MirrorFetch
from portal.models.types import utcnow

# Set while a webhook handler writes the state it settled on; such a write leaves no mark.
_settled: ContextVar[bool] = ContextVar("mirror_settled_write", default=False)


@contextmanager
def settled_write() -> Iterator[None]:
    """Write, inside the block, a state a webhook handler settled on (see services.webhooks)."""
    token = _settled.set(True)
    try:
        yield
    finally:
        _settled.reset(token)


def mark_of(stripe_id: str) -> MirrorFetch | None:
    """Return the mark of the last fetched copy written for a Stripe object, if any."""
    return db.session.scalar(db.select(MirrorFetch).where(MirrorFetch.stripe_id == stripe_id))


def note_fetch(stripe_id: str, version: int, asked_at: datetime | None) -> None:
    """Record that the row of `stripe_id` now holds a copy fetched from Stripe."""
    mark = mark_of(stripe_id)
    if mark is None:
        mark = MirrorFetch(stripe_id=stripe_id, version=version, asked_at=asked_at)
        db.session.add(mark)
        return
    if version >= mark.version:
        mark.version = version
        mark.asked_at = asked_at


def fetch_marked(stripe_id: str, version: int, fetch: Callable[[str], object]) -> object:
    """Ask Stripe for its copy of an object through `fetch`, marking the row it will be
    written to at `version` with the moment it was asked for."""
    asked_at = utcnow()
    fresh = fetch(stripe_id)
    note_fetch(stripe_id, version, asked_at)
    return fresh


def note_write(stripe_id: str, version: int) -> None:
    """Called by every mirror write: a write not settled from events is a fetched copy."""
    if not _settled.get():
        note_fetch(stripe_id, version, None)


def covers(mark: MirrorFetch | None, received_at: datetime | None) -> bool:
    """Tell whether a fetched copy is at least as new as an event received at `received_at`."""
    return (mark is not None and mark.asked_at is not None and received_at is not None
            and received_at < mark.asked_at)


def from_events(mark: MirrorFetch | None, stored: int) -> bool:
    """Tell whether a row at version `stored` was written from events alone at that version."""
    return mark is None or mark.version < stored
