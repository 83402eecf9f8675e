"""Prepaid credits: packs bought through Checkout, the ledger, draw-downs, the hard limit."""
from __future__ import annotations

import itertools
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from portal.extensions import db
from portal.models import Account, AuditEntry, CreditBalance, CreditLedgerEntry
from portal.services import credits, sync
from portal.services.catalog_sync import sync_catalog
from portal.services.credit_packs import credit_packs
from portal.services.customers import ensure_stripe_customer
from tests import factories
from tests.helpers import csrf_from, price_id, skip_or_fail
from tests.test_usage_summary import starter_subscription
from tests.test_webhook_handlers import complete_checkout
from tests.test_webhooks import event_body, post_event
from tests.usage_support import assert_matches, event, new_key, post_usage

THREADS = 12


def ledger(account_id: int) -> list[tuple[str, int, int]]:
    db.session.expire_all()
    return [(e.kind, e.amount, e.balance_after) for e in db.session.scalars(
        db.select(CreditLedgerEntry).where(CreditLedgerEntry.account_id == account_id)
        .order_by(CreditLedgerEntry.id))]


def grant_at_stripe(stripe_api, account, value, **params):
    """Grant credits at Stripe directly, as from the Dashboard."""
    return stripe_api.v1.billing.credit_grants.create(params={
        "customer": ensure_stripe_customer(account),
        "amount": {"type": "monetary", "monetary": {"currency": "usd", "value": value}},
        "applicability_config": {"scope": {"price_type": "metered"}}, **params})


def test_catalog_packs_are_checked():
    packs = {pack.key: pack for pack in credit_packs()}
    assert packs["small"].amount == packs["small"].credits == 2000
    assert packs["large"].lookup_key == "credit_pack_large"
    with pytest.raises(ValueError, match="credits must be a whole amount"):
        credit_packs({"currency": "usd", "credit_packs": [
            {"key": "x", "name": "X", "amount": 100, "credits": 0}]})
    with pytest.raises(ValueError, match="currency"):
        credit_packs({"currency": "usd", "credit_packs": [
            {"key": "x", "name": "X", "amount": 100, "credits": 100, "currency": "eur"}]})


def test_buying_a_pack_through_checkout_grants_its_credits_once(
        app, client, stripe_api, make_user, login, deliver_webhooks):
    """A pack paid on the sandbox's hosted Checkout becomes one Stripe grant and one entry,
    however often Stripe delivers checkout.session.completed."""
    sync_catalog()
    user = make_user()
    login(user)
    page = client.get("/billing/credits")
    assert page.status_code == 200
    assert b'data-pack="small"' in page.data and b"No credits yet" in page.data
    token = csrf_from(client, "/billing/credits")
    assert client.post("/billing/credits/buy", data={"pack": "small"}).status_code == 400
    assert client.post("/billing/credits/buy", data={"csrf_token": token,
                                                     "pack": "nope"}).status_code == 303
    response = client.post("/billing/credits/buy", data={"csrf_token": token, "pack": "small"})
    assert response.status_code == 303
    url = response.headers["Location"]
    assert "/_stripe/c/pay/cs_test_" in url
    session_id = url.rsplit("/", 1)[-1].split("#")[0]
    session = stripe_api.v1.checkout.sessions.retrieve(session_id)
    assert (session.mode, session.amount_total, session.metadata["credits"]) == (
        "payment", 2000, "2000")
    complete_checkout(client, url)
    deliver_webhooks()
    account = db.session.get(Account, user.account_id)
    grants = stripe_api.v1.billing.credit_grants.list(
        params={"customer": account.stripe_customer_id}).data
    assert [(g.amount.monetary.value, g.applicability_config.scope.price_type) for g in grants] \
        == [(2000, "metered")]
    assert ledger(account.id) == [("grant", 2000, 2000)]

    # The same completed session delivered again under new event ids, one after the other
    # and then at once from several threads: still one grant, one entry.
    completed = stripe_api.v1.checkout.sessions.retrieve(session_id).to_dict(recursive=True)
    assert completed["payment_status"] == "paid"
    body = event_body("checkout.session.completed", completed, event_id="evt_dup_1",
                      created=int(time.time()))
    assert post_event(client, app, body).status_code == 200

    answers = []

    def replay(n: int) -> None:
        replayed = event_body("checkout.session.completed", completed,
                              event_id=f"evt_dup_t{n}", created=int(time.time()))
        with app.app_context():
            answers.append(post_event(app.test_client(), app, replayed).status_code)

    threads = [threading.Thread(target=replay, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == [200] * 4
    assert len(stripe_api.v1.billing.credit_grants.list(
        params={"customer": account.stripe_customer_id}).data) == 1
    assert ledger(account.id) == [("grant", 2000, 2000)]
    page = client.get("/billing/credits").get_data(as_text=True)
    assert "$20.00" in page and 'data-kind="grant"' in page
    assert db.session.scalar(db.select(db.func.count(AuditEntry.id)).where(
        AuditEntry.action == "credits.granted")) == 1


def test_draw_down_is_idempotent_and_never_overdraws(app):
    account = factories.make_account()
    credits.record_grant(account, {"id": "credgr_test_local", "name": "Pack",
                                   "amount": {"monetary": {"currency": "usd", "value": 1000}}})
    db.session.commit()
    first = credits.draw_down(account, 600, "report:1")
    assert (first.amount, first.balance_after) == (-600, 400)
    assert credits.draw_down(account, 600, "report:1") is None  # the same reference again
    partial = credits.draw_down(account, 600, "report:2")
    assert (partial.amount, partial.balance_after) == (-400, 0)
    assert credits.draw_down(account, 1, "report:3") is None  # nothing left
    assert ledger(account.id) == [("grant", 1000, 1000), ("draw_down", -600, 400),
                                  ("draw_down", -400, 0)]
    entry = db.session.scalar(db.select(CreditLedgerEntry).limit(1))
    entry.amount = 5
    with pytest.raises(ValueError, match="append-only"):
        db.session.commit()
    db.session.rollback()


def test_concurrent_draw_downs_never_take_the_balance_below_zero(app):
    if db.engine.dialect.name != "postgresql":
        skip_or_fail("set TEST_DATABASE_URL to a PostgreSQL database for the concurrency test",
                     "REQUIRE_POSTGRES")
    account = factories.make_account()
    credits.record_grant(account, {"id": "credgr_test_race", "name": "Pack",
                                   "amount": {"monetary": {"currency": "usd", "value": 1000}}})
    db.session.commit()
    account_id = account.id  # threads must not touch this session's objects
    barrier = threading.Barrier(THREADS)
    drawn: list[int] = []

    def draw(n: int) -> None:
        with app.app_context():
            barrier.wait()
            # Each asks for 150: the 1000 can pay six in full and one in part.
            entry = credits.draw_down(account_id, 150, f"race:{n}")
            drawn.append(-entry.amount if entry else 0)
            db.session.remove()

    threads = [threading.Thread(target=draw, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(drawn) == 1000
    assert sorted(amount for amount in drawn if amount) == [100] + [150] * 6
    entries = ledger(account_id)
    assert [after for _, _, after in entries] == list(
        itertools.accumulate(amount for _, amount, _ in entries))
    assert db.session.get(CreditBalance, account_id).balance == 0


def test_overage_draws_credits_as_it_accrues(app, client):
    account = factories.make_account()
    now = datetime.now(UTC)
    start = now.replace(minute=0, second=0, microsecond=0) - timedelta(days=3)
    starter_subscription(account, start)
    credits.record_grant(account, {"id": "credgr_test_overage", "name": "Pack",
                                   "amount": {"monetary": {"currency": "usd", "value": 5000}}})
    db.session.commit()
    secret = new_key(account)
    # Starter includes 50,000 calls; each one above costs 0.2 cents.
    assert post_usage(client, secret, event("a", 50000)).status_code == 200
    assert ledger(account.id) == [("grant", 5000, 5000)]
    assert post_usage(client, secret, event("b", 10000)).status_code == 200
    assert ledger(account.id)[-1] == ("draw_down", -2000, 3000)
    assert post_usage(client, secret, event("b", 10000)).status_code == 200  # a replay
    assert post_usage(client, secret, event("c", 2503)).status_code == 200
    # 12,503 x 0.2 = 2500.6, rounded half up to 2501: 501 more.
    assert ledger(account.id)[-1] == ("draw_down", -501, 2499)
    assert credits.draw_down_overage(account.id) is None
    # Metered reporting drew a window's overage itself: ingestion does not draw it again.
    credits.draw_down(account, 100, "report:window-1")
    assert post_usage(client, secret, event("d", 500)).status_code == 200
    assert ledger(account.id)[-1] == ("draw_down", -100, 2399)
    assert post_usage(client, secret, event("e", 10)).status_code == 200
    assert ledger(account.id)[-1] == ("draw_down", -2, 2397)


def test_a_new_grant_pays_the_overage_that_found_no_credits(app, client):
    account = factories.make_account()
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=2)
    starter_subscription(account, start)
    assert post_usage(client, new_key(account), event("a", 51000)).status_code == 200
    assert ledger(account.id) == []
    credits.record_grant(account, {"id": "credgr_test_late", "name": "Pack",
                                   "amount": {"monetary": {"currency": "usd", "value": 500}}})
    db.session.commit()
    # 1,000 calls over at 0.2 cents: Stripe will apply 200 of the grant to that line.
    assert ledger(account.id) == [("grant", 500, 500), ("draw_down", -200, 300)]


def test_hard_limit_answers_402_once_included_usage_and_credits_are_used_up(
        app, client, make_user, login):
    user = make_user()
    account = user.account
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=1)
    starter_subscription(account, start)
    secret = new_key(account)
    login(user)
    token = csrf_from(client, "/billing/credits")
    assert client.post("/billing/credits/hard-limit", data={"enabled": "y"}).status_code == 400
    assert client.post("/billing/credits/hard-limit",
                       data={"csrf_token": token, "enabled": "y"}).status_code == 303
    assert db.session.get(CreditBalance, account.id).hard_limit is True

    assert post_usage(client, secret, event("in-1", 50000)).status_code == 200
    refused = post_usage(client, secret, {"events": [event("over-1", 1), event("ok", 1,
                                                                            meter="seats")]})
    assert refused.status_code == 402
    body = refused.get_json()
    assert_matches(client, "Error", body)
    assert body["error"]["code"] == "usage_limit_reached"
    assert "hard limit" in body["error"]["message"]
    # Refused means nothing stored: the in-limit seat event went with it.
    summary = client.get("/api/v1/usage/summary",
                         headers={"Authorization": f"Bearer {secret}"}).get_json()
    assert {m["meter"]: m["used"] for m in summary["meters"]}["seats"] == 0
    # 400 cents of credits pay 2,000 calls above the included amount, and no more.
    credits.record_grant(account, {"id": "credgr_test_limit", "name": "Pack",
                                   "amount": {"monetary": {"currency": "usd", "value": 400}}})
    db.session.commit()
    assert post_usage(client, secret, event("over-2", 2000)).status_code == 200
    assert ledger(account.id)[-1] == ("draw_down", -400, 0)
    assert post_usage(client, secret, event("over-3", 1)).status_code == 402
    # Seats (3 included) still fit; the hard limit refuses only what would cost.
    assert post_usage(client, secret, event("seat-2", 2, meter="seats")).status_code == 200
    document = client.get("/api/v1/openapi.json").get_json()
    assert "402" in document["paths"]["/usage"]["post"]["responses"]
    token = csrf_from(client, "/billing/credits")
    client.post("/billing/credits/hard-limit", data={"csrf_token": token})
    assert post_usage(client, secret, event("over-4", 1)).status_code == 200


def test_grants_expiries_and_voids_at_stripe_reach_the_ledger(
        app, client, stripe_api, make_user, login, deliver_webhooks):
    """Grants made at Stripe, and their expiry and void, arrive by webhook, once each."""
    user = make_user()
    account = user.account
    kept = grant_at_stripe(stripe_api, account, 700, name="Goodwill")
    lapsing = grant_at_stripe(stripe_api, account, 500)
    deliver_webhooks()
    assert ledger(account.id) == [("grant", 700, 700), ("grant", 500, 1200)]
    credits.draw_down(account.id, 300, "report:x")
    stripe_api.v1.billing.credit_grants.expire(lapsing.id)
    stripe_api.v1.billing.credit_grants.void_grant(kept.id)
    deliver_webhooks()
    deliver_webhooks()
    entries = ledger(account.id)
    assert entries[:3] == [("grant", 700, 700), ("grant", 500, 1200), ("draw_down", -300, 900)]
    assert entries[3:] == [("expiry", -500, 400), ("void", -400, 0)]
    login(user)
    page = client.get("/billing/credits").get_data(as_text=True)
    assert 'data-kind="expiry"' in page and 'data-kind="void"' in page
    assert 'id="credit-balance-amount">$0.00' in page


def test_credits_pay_the_overage_line_and_the_ledger_meets_stripes_balance(
        app, client, stripe_api, make_user, deliver_webhooks):
    """A Starter subscription with its metered overage price, on a test clock: the portal
    draws credits as overage accrues, the sandbox applies the grant to the renewal invoice's
    overage line (docs: billing/subscriptions/usage-based/billing-credits), and both then
    hold the same balance."""
    sync_catalog()
    account = make_user().account
    now = int(time.time())
    clock = stripe_api.v1.test_helpers.test_clocks.create(params={"frozen_time": now})
    customer = stripe_api.v1.customers.create(params={
        "test_clock": clock.id, "metadata": {"account_id": str(account.id)}})
    sync.customer(customer)
    db.session.commit()
    card = stripe_api.v1.payment_methods.attach("pm_card_visa", params={"customer": customer.id})
    subscription = stripe_api.v1.subscriptions.create(params={
        "customer": customer.id, "default_payment_method": card.id,
        "items": [{"price": price_id(stripe_api, "starter_month")},
                  {"price": price_id(stripe_api, "starter_api_calls_month")}]})
    grant_at_stripe(stripe_api, account, 5000, name="Prepaid")
    deliver_webhooks()
    assert ledger(account.id) == [("grant", 5000, 5000)]

    # 60,000 calls: 10,000 above Starter's 50,000, at 0.2 cents each = 2000.
    secret = new_key(account)
    for identifier, calls in (("calls-1", 50000), ("calls-2", 10000)):
        assert post_usage(client, secret, event(identifier, calls,
                                                at=datetime.fromtimestamp(now + 60, UTC))
                          ).status_code == 200
        stripe_api.v1.billing.meter_events.create(params={
            "event_name": "api_call", "timestamp": now + 60, "identifier": identifier,
            "payload": {"stripe_customer_id": customer.id, "value": str(calls)}})
    assert ledger(account.id)[-1] == ("draw_down", -2000, 3000)

    period_end = subscription["items"].data[0].current_period_end
    stripe_api.v1.test_helpers.test_clocks.advance(
        clock.id, params={"frozen_time": period_end + 2 * 3600})
    renewal = stripe_api.v1.invoices.list(params={"subscription": subscription.id}).data[0]
    assert renewal.billing_reason == "subscription_cycle"
    overage = next(line for line in renewal.lines.data if line.amount == 2000)
    assert [credit.amount for credit in overage.pretax_credit_amounts] == [2000]
    assert renewal.total == renewal.amount_due == 1900  # the plan; the overage was prepaid
    summary = stripe_api.v1.billing.credit_balance_summary.retrieve(params={
        "customer": customer.id,
        "filter": {"type": "applicability_scope",
                   "applicability_scope": {"price_type": "metered"}}})
    deliver_webhooks()
    stripe_balance = summary.balances[0].available_balance.monetary.value
    assert stripe_balance == db.session.get(CreditBalance, account.id).balance == 3000


def test_concurrent_batches_under_the_hard_limit_spend_the_credits_once(app, client):
    if db.engine.dialect.name != "postgresql":
        skip_or_fail("set TEST_DATABASE_URL to a PostgreSQL database for the concurrency test",
                     "REQUIRE_POSTGRES")
    account = factories.make_account()
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=1)
    starter_subscription(account, start)
    secret = new_key(account)
    assert post_usage(client, secret, event("included", 50000)).status_code == 200
    credits.record_grant(account, {"id": "credgr_test_limit_race", "name": "Pack",
                                   "amount": {"monetary": {"currency": "usd", "value": 100}}})
    credits.locked_balance(account.id, "usd").hard_limit = True
    db.session.commit()
    account_id = account.id
    barrier = threading.Barrier(8)
    statuses: list[int] = []

    def send(n: int) -> None:
        barrier.wait()
        # 100 calls above the included amount cost 20 cents: 100 cents pay for five batches.
        response = post_usage(app.test_client(), secret, event(f"over-{n}", 100))
        statuses.append(response.status_code)

    threads = [threading.Thread(target=send, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200] * 5 + [402] * 3
    assert ledger(account_id)[-1][2] == 0
    assert sum(amount for kind, amount, _ in ledger(account_id) if kind == "draw_down") == -100
