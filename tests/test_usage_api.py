"""POST /api/v1/usage: key auth, idempotency, per-item errors, time limits, rate limit."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from jsonschema import Draft202012Validator
from sqlalchemy import func

from portal.extensions import db
from portal.models import UsageEvent, UsageHourly
from portal.services.api_keys import revoke_api_key
from tests import factories
from tests.usage_support import assert_matches, event, new_key, post_usage


def stored_total(account, meter: str = "api_calls") -> tuple[int, int]:
    """Return (sum of hourly aggregates, number of raw events) for one account's meter."""
    total = db.session.scalar(db.select(func.coalesce(func.sum(UsageHourly.quantity), 0))
                              .where(UsageHourly.account_id == account.id,
                                     UsageHourly.meter == meter))
    events = db.session.scalar(db.select(func.count(UsageEvent.id))
                               .where(UsageEvent.account_id == account.id,
                                      UsageEvent.meter == meter))
    return int(total), int(events)


def test_one_event_is_stored_and_counted(client):
    account = factories.make_account()
    secret = new_key(account)
    response = post_usage(client, secret, event("evt-1", quantity=7))
    assert response.status_code == 200
    body = response.get_json()
    assert_matches(client, "IngestResult", body)
    assert body["accepted"] == 1 and body["items"][0]["status"] == "accepted"
    assert stored_total(account) == (7, 1)


def test_same_batch_twice_changes_nothing(client):
    account = factories.make_account()
    secret = new_key(account)
    batch = {"events": [event(f"evt-{n}", quantity=n) for n in range(1, 6)]}
    first = post_usage(client, secret, batch).get_json()
    assert (first["accepted"], first["duplicates"]) == (5, 0)
    second = post_usage(client, secret, batch)
    assert second.status_code == 200
    body = second.get_json()
    assert_matches(client, "IngestResult", body)
    assert (body["accepted"], body["duplicates"]) == (0, 5)
    assert [item["status"] for item in body["items"]] == ["duplicate"] * 5
    assert stored_total(account) == (1 + 2 + 3 + 4 + 5, 5)


def test_overlapping_batches_store_only_the_new_events(client):
    account = factories.make_account()
    secret = new_key(account)
    post_usage(client, secret, {"events": [event(f"evt-{n}", quantity=n) for n in range(1, 6)]})
    body = post_usage(client, secret,
                      {"events": [event(f"evt-{n}", quantity=n) for n in range(4, 9)]}).get_json()
    statuses = {item["identifier"]: item["status"] for item in body["items"]}
    assert statuses == {"evt-4": "duplicate", "evt-5": "duplicate", "evt-6": "accepted",
                        "evt-7": "accepted", "evt-8": "accepted"}
    assert stored_total(account) == (sum(range(1, 9)), 8)


def test_identifier_repeated_within_a_batch_counts_once(client):
    account = factories.make_account()
    secret = new_key(account)
    body = post_usage(client, secret, {"events": [event("same", 10), event("same", 10)]})
    assert [item["status"] for item in body.get_json()["items"]] == ["accepted", "duplicate"]
    assert stored_total(account) == (10, 1)


def test_identifiers_are_per_account(client):
    first, second = factories.make_account(), factories.make_account()
    post_usage(client, new_key(first), event("shared-id", 3))
    body = post_usage(client, new_key(second), event("shared-id", 4)).get_json()
    assert body["accepted"] == 1
    assert stored_total(first) == (3, 1) and stored_total(second) == (4, 1)


def test_bad_items_are_named_while_good_items_are_kept(client):
    account = factories.make_account()
    secret = new_key(account)
    batch = {"events": [
        event("good-1", 2),
        event("bad-meter", 1, meter="bandwidth"),
        event("bad-quantity", "lots"),
        {"meter": "api_calls", "quantity": 1, "timestamp": "yesterday", "identifier": "bad-time"},
        {"meter": "api_calls", "quantity": 1, "timestamp": int(datetime.now(UTC).timestamp())},
        event("extra-field", 1, colour="blue"),
        "not an object",
        event("good-2", 3),
    ]}
    response = post_usage(client, secret, batch)
    assert response.status_code == 200
    body = response.get_json()
    assert_matches(client, "IngestResult", body)
    fields = {item["index"]: [(e["field"], e["code"]) for e in item.get("errors", [])]
              for item in body["items"]}
    assert fields == {0: [], 1: [("meter", "unknown_meter")],
                      2: [("quantity", "invalid_type")], 3: [("timestamp", "invalid_format")],
                      4: [("identifier", "required")], 5: [("colour", "unknown_field")],
                      6: [("event", "invalid_type")], 7: []}
    assert (body["accepted"], body["rejected"]) == (2, 6)
    assert stored_total(account) == (5, 2)


def test_a_batch_with_no_good_item_is_422_in_the_error_shape(client):
    account = factories.make_account()
    response = post_usage(client, new_key(account), event("x", -1))
    assert response.status_code == 422
    body = response.get_json()
    assert_matches(client, "Error", body)
    assert body["error"]["code"] == "no_valid_events"
    assert body["error"]["details"][0]["errors"][0]["field"] == "quantity"
    assert stored_total(account) == (0, 0)


def test_time_limits_are_35_days_back_and_5_minutes_ahead(client):
    account = factories.make_account()
    now = datetime.now(UTC)
    batch = {"events": [
        event("too-old", 1, at=now - timedelta(days=35, minutes=1)),
        event("old-enough", 2, at=now - timedelta(days=34, hours=23)),
        event("soon", 4, at=now + timedelta(minutes=4)),
        event("too-far-ahead", 8, at=now + timedelta(minutes=6)),
        {"meter": "api_calls", "quantity": 16, "identifier": "iso",
         "timestamp": (now - timedelta(hours=1)).isoformat()},
    ]}
    body = post_usage(client, new_key(account), batch).get_json()
    by_id = {item["identifier"]: item for item in body["items"]}
    assert by_id["too-old"]["errors"][0]["code"] == "too_old"
    assert "35 days" in by_id["too-old"]["errors"][0]["message"]
    assert by_id["too-far-ahead"]["errors"][0]["code"] == "in_future"
    assert "5 minutes" in by_id["too-far-ahead"]["errors"][0]["message"]
    assert {by_id[name]["status"] for name in ("old-enough", "soon", "iso")} == {"accepted"}
    assert stored_total(account) == (2 + 4 + 16, 3)


def test_missing_wrong_and_revoked_keys_get_401(client):
    account = factories.make_account()
    secret = new_key(account)
    for headers in ({}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer bp_test_nope"},
                    {"Authorization": f"Bearer {secret}x"}):
        response = client.post("/api/v1/usage", json=event("a"), headers=headers)
        assert response.status_code == 401, headers
        assert_matches(client, "Error", response.get_json())
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert post_usage(client, secret, event("before-revoke")).status_code == 200
    key_id = db.session.scalar(db.select(UsageEvent.api_key_id))
    revoke_api_key(account, key_id, actor=None)
    response = post_usage(client, secret, event("after-revoke"))
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "invalid_api_key"
    assert client.get("/api/v1/usage/summary",
                      headers={"Authorization": f"Bearer {secret}"}).status_code == 401
    assert stored_total(account) == (1, 1)


def test_malformed_bodies_are_400_in_the_error_shape(client):
    secret = new_key(factories.make_account())
    headers = {"Authorization": f"Bearer {secret}"}
    answers = [
        client.post("/api/v1/usage", data="{not json", headers=headers,
                    content_type="application/json"),
        client.post("/api/v1/usage", data="meter=api_calls", headers=headers),
        post_usage(client, secret, [event("a")]),
        post_usage(client, secret, {"events": []}),
        post_usage(client, secret, {"events": [event(f"e{n}") for n in range(1001)]}),
    ]
    codes = [answer.get_json()["error"]["code"] for answer in answers]
    assert [answer.status_code for answer in answers] == [400] * 5
    assert codes == ["invalid_json", "invalid_json", "invalid_body", "invalid_body",
                     "batch_too_large"]
    for answer in answers:
        assert_matches(client, "Error", answer.get_json())


def test_a_full_batch_of_1000_is_accepted(client):
    account = factories.make_account()
    body = post_usage(client, new_key(account),
                      {"events": [event(f"e{n}", 1) for n in range(1000)]}).get_json()
    assert body["accepted"] == 1000
    assert stored_total(account) == (1000, 1000)


def test_rate_limit_per_key_answers_429_with_retry_after(app, client):
    app.config["USAGE_API_RATE_LIMIT"] = "3 per minute"
    account = factories.make_account()
    secret, other = new_key(account, "busy"), new_key(account, "quiet")
    answers = [post_usage(client, secret, event(f"r{n}")) for n in range(4)]
    assert [answer.status_code for answer in answers] == [200, 200, 200, 429]
    limited = answers[-1]
    assert 0 < int(limited.headers["Retry-After"]) <= 60
    assert_matches(client, "Error", limited.get_json())
    assert limited.get_json()["error"]["code"] == "rate_limited"
    # The budget is the key's, not the account's or the address's.
    assert post_usage(client, other, event("r-other")).status_code == 200
    assert stored_total(account) == (4, 4)


def test_openapi_document_describes_both_endpoints(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    document = response.get_json()
    assert document["openapi"].startswith("3.1")
    assert set(document["paths"]) == {"/usage", "/usage/summary"}
    Draft202012Validator.check_schema({"components": document["components"]})
    for schema in document["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)


def test_a_body_over_the_size_limit_is_413_in_the_error_shape(client):
    account = factories.make_account()
    events = [event(f"big{n}", metadata={"note": "x" * 1500}) for n in range(1000)]
    response = post_usage(client, new_key(account), {"events": events})
    assert response.status_code == 413
    assert_matches(client, "Error", response.get_json())
    assert "fewer events" in response.get_json()["error"]["message"]
    assert stored_total(account) == (0, 0)
