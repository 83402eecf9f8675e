"""Identical batches sent at the same moment by many threads are counted exactly once."""
from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy import func

from portal.extensions import db
from portal.models import UsageEvent, UsageHourly
from tests import factories
from tests.helpers import skip_or_fail
from tests.usage_support import event, new_key

THREADS = 8


def test_concurrent_identical_batches_count_once(app):
    if db.engine.dialect.name != "postgresql":
        skip_or_fail("set TEST_DATABASE_URL to a PostgreSQL database for the concurrency test",
                     "REQUIRE_POSTGRES")
    account = factories.make_account()
    secret = new_key(account)
    now = datetime.now(UTC)
    # Spread over several hours and meters, so the transactions meet on many aggregate rows.
    batch = {"events": [
        event(f"c{n}", n % 17 + 1, meter=("api_calls", "storage_gb")[n % 2],
              at=now - timedelta(minutes=37 * n)) for n in range(300)]}
    expected = {meter: sum(item["quantity"] for item in batch["events"]
                           if item["meter"] == meter) for meter in ("api_calls", "storage_gb")}
    barrier = threading.Barrier(THREADS)
    answers: list = []

    def send() -> None:
        client = app.test_client()
        barrier.wait()
        response = client.post("/api/v1/usage", json=batch,
                               headers={"Authorization": f"Bearer {secret}"})
        answers.append((response.status_code, response.get_json()))

    threads = [threading.Thread(target=send) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [status for status, _ in answers] == [200] * THREADS
    assert sum(body["accepted"] for _, body in answers) == 300
    assert sum(body["duplicates"] for _, body in answers) == 300 * (THREADS - 1)
    db.session.expire_all()
    totals = dict(db.session.execute(
        db.select(UsageHourly.meter, func.sum(UsageHourly.quantity))
        .where(UsageHourly.account_id == account.id).group_by(UsageHourly.meter)).all())
    assert {meter: int(total) for meter, total in totals.items()} == expected
    assert db.session.scalar(db.select(func.count(UsageEvent.id))) == 300
