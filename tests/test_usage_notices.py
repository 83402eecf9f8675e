"""Threshold notices at 80% and 100% of an included amount: a banner on the portal pages and
one email per threshold, meter and period, also when many requests cross it at once."""
from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy import func

from portal.extensions import db
from portal.models import QueuedMail, Subscription, UsageNotice
from tests.helpers import skip_or_fail
from tests.test_billing_emails import mails, parts
from tests.test_usage_summary import starter_subscription
from tests.usage_support import event, new_key, post_usage

THREADS = 8


def test_each_threshold_is_mailed_once_and_shown_as_a_banner(
        app, client, make_user, login, outbox):
    user = make_user()
    account = user.account
    now = datetime.now(UTC)
    starter_subscription(account, now - timedelta(days=5))
    secret = new_key(account)
    # Starter includes 50,000 API calls: 39,999 is under 80%.
    post_usage(client, secret, event("a", 39999, at=now - timedelta(hours=3)))
    assert mails(outbox, "your plan includes") == []
    login(user)
    assert "data-usage-threshold" not in client.get("/billing/").get_data(as_text=True)

    post_usage(client, secret, event("b", 1, at=now - timedelta(hours=2)))  # exactly 80%
    post_usage(client, secret, event("c", 5000, at=now - timedelta(hours=1)))
    eighty = mails(outbox, "API calls: you have used 80%")
    assert len(eighty) == 1 and eighty[0]["To"] == user.email
    text, html = parts(eighty[0])
    assert "40,000 API calls of 50,000 API calls" in text and "/billing/usage" in text
    assert "40,000 API calls" in html
    dashboard = client.get("/billing/").get_data(as_text=True)
    assert 'data-usage-threshold="api_calls:80"' in dashboard
    assert "API calls: you have used 80% of what your plan includes." in dashboard
    assert "45,000 API calls of 50,000 API calls" in dashboard

    # 100%, then more usage and a replayed batch: no further mail.
    post_usage(client, secret, {"events": [event("d", 5000), event("e", 10)]})
    post_usage(client, secret, {"events": [event("d", 5000), event("f", 10)]})
    assert len(mails(outbox, "API calls: you have used all")) == 1
    assert len(mails(outbox, "you have used 80%")) == 1
    usage_page = client.get("/billing/usage").get_data(as_text=True)
    assert 'data-usage-threshold="api_calls:100"' in usage_page
    assert 'data-usage-threshold="api_calls:80"' not in usage_page
    assert "more is billed as overage" in usage_page
    # Storage has its own thresholds: 9 GB of 10 is over 80%.
    post_usage(client, secret, event("disk", 9, meter="storage_gb"))
    assert len(mails(outbox, "Storage: you have used 80%")) == 1
    assert db.session.scalar(db.select(func.count(UsageNotice.id))) == 3


def test_a_new_period_announces_again(app, client, make_user, outbox):
    user = make_user()
    now = datetime.now(UTC)
    start = now - timedelta(days=31)
    subscription = starter_subscription(user.account, start)
    secret = new_key(user.account)
    post_usage(client, secret, event("old", 50000, at=now - timedelta(days=2)))
    assert len(mails(outbox, "API calls: you have used all")) == 1
    # The renewal as the mirror records it: the next period starts one hour ago.
    row = db.session.get(Subscription, subscription.id)
    row.current_period_start = now - timedelta(hours=1)
    row.current_period_end = now - timedelta(hours=1) + timedelta(days=30)
    db.session.commit()
    post_usage(client, secret, event("new", 1000))  # 1,000 of 50,000 this period
    assert len(mails(outbox, "API calls: you have used all")) == 1
    post_usage(client, secret, event("new-2", 49000))
    assert len(mails(outbox, "API calls: you have used all")) == 2
    starts = set(db.session.scalars(db.select(UsageNotice.period_start)))
    assert len(starts) == 2


def test_no_plan_no_thresholds(app, client, make_user, outbox):
    user = make_user()
    secret = new_key(user.account)
    post_usage(client, secret, event("lots", 10**9))
    assert db.session.scalar(db.select(func.count(UsageNotice.id))) == 0
    assert mails(outbox, "your plan includes") == []


def test_concurrent_batches_crossing_a_threshold_send_one_mail(app, make_user):
    if db.engine.dialect.name != "postgresql":
        skip_or_fail("set TEST_DATABASE_URL to a PostgreSQL database for the concurrency test",
                     "REQUIRE_POSTGRES")
    user = make_user()
    now = datetime.now(UTC)
    starter_subscription(user.account, now - timedelta(days=3))
    secret = new_key(user.account)
    barrier = threading.Barrier(THREADS)
    statuses: list[int] = []

    def send(number: int) -> None:
        client = app.test_client()
        # Each batch alone stays under 80%; all of them together pass 100%.
        batch = {"events": [event(f"t{number}-{n}", 700, at=now - timedelta(minutes=n))
                            for n in range(10)]}
        barrier.wait()
        response = client.post("/api/v1/usage", json=batch,
                               headers={"Authorization": f"Bearer {secret}"})
        statuses.append(response.status_code)

    threads = [threading.Thread(target=send, args=(number,)) for number in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * THREADS
    db.session.expire_all()
    # 8 x 7,000 = 56,000 of 50,000: both thresholds, each recorded and mailed once.
    notices = db.session.scalars(db.select(UsageNotice.threshold).where(
        UsageNotice.meter == "api_calls")).all()
    assert sorted(notices) == [80, 100]
    queued = db.session.scalars(db.select(QueuedMail.subject).where(
        QueuedMail.dedupe_key.like("usage-threshold:%"))).all()
    assert len(queued) == 2
