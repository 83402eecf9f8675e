"""What ingestion writes reads back exactly through the models: times, metadata, aggregates
(ingestion passes values in the database's stored form, so this pins that form down)."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from portal.extensions import db
from portal.models import UsageEvent, UsageHourly
from portal.services.usage_summary import period_usage
from tests import factories
from tests.usage_support import new_key, post_usage


def rfc3339(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def test_events_and_aggregates_read_back_as_sent(client):
    account = factories.make_account()
    secret = new_key(account)
    hour = (datetime.now(UTC) - timedelta(hours=3)).replace(minute=0, second=0, microsecond=0)
    early = hour + timedelta(minutes=5, microseconds=250)
    late = hour + timedelta(minutes=40, seconds=1, microseconds=999999)
    middle = hour + timedelta(minutes=20)
    answer = post_usage(client, secret, {"events": [
        {"meter": "storage_gb", "quantity": 7, "timestamp": rfc3339(late), "identifier": "s-late",
         "metadata": {"region": "eu", "disk": "ssd"}},
        {"meter": "storage_gb", "quantity": 3, "timestamp": rfc3339(early),
         "identifier": "s-early"}]})
    assert answer.get_json()["accepted"] == 2
    # Measured between the two, sent afterwards: the hour keeps the later measurement.
    post_usage(client, secret, {"meter": "storage_gb", "quantity": 5,
                                "timestamp": rfc3339(middle), "identifier": "s-middle"})
    db.session.expire_all()
    stored = {event.identifier: event for event in db.session.scalars(db.select(UsageEvent))}
    assert stored["s-late"].timestamp == late and stored["s-late"].timestamp.tzinfo is not None
    assert stored["s-early"].timestamp == early
    assert stored["s-late"].event_metadata == {"region": "eu", "disk": "ssd"}
    assert stored["s-early"].event_metadata == {}
    assert abs(stored["s-middle"].received_at - datetime.now(UTC)) < timedelta(minutes=1)
    aggregate = db.session.scalar(db.select(UsageHourly))
    assert (aggregate.hour, aggregate.quantity, aggregate.event_count) == (hour, 15, 3)
    assert (aggregate.last_quantity, aggregate.last_at) == (7, late)
    # The stored hour compares right against a period boundary given as a datetime.
    in_month_of_late = period_usage(account.id, now=late + timedelta(minutes=1))[1]
    storage = next(usage for usage in in_month_of_late if usage.meter == "storage_gb")
    assert storage.used == 7
