"""Protocol: auth, errors, nested params, pagination, expand, metadata, idempotency."""

from __future__ import annotations

import pytest
import stripe
from flask import Flask
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from portal.sandbox import create_sandbox_app
from tests.sandbox.conftest import API_KEY, serve_wsgi


def test_missing_key_is_401(sandbox):
    client = sandbox.client(key="")
    with pytest.raises(stripe.AuthenticationError) as caught:
        client.v1.customers.list()
    assert caught.value.http_status == 401
    assert "API key" in caught.value.user_message
    assert caught.value.request_id.startswith("req_")


def test_live_and_publishable_keys_are_refused(sandbox):
    with pytest.raises(stripe.AuthenticationError):
        sandbox.client(key="sk_live_abcdefgh1234").v1.customers.list()
    with pytest.raises(stripe.AuthenticationError) as caught:
        sandbox.client(key="pk_test_abcdefgh1234").v1.customers.list()
    assert "publishable" in caught.value.user_message


def test_every_response_has_a_request_id(stripe_client):
    customer = stripe_client.v1.customers.create(params={"email": "a@example.com"})
    assert customer.last_response.request_id.startswith("req_")
    assert customer.livemode is False
    assert customer.id.startswith("cus_")
    assert isinstance(customer.created, int)


def test_unknown_parameter_is_rejected(stripe_client):
    with pytest.raises(stripe.InvalidRequestError) as caught:
        stripe_client.v1.customers.create(params={"emial": "a@example.com"})
    err = caught.value
    assert err.http_status == 400
    assert err.user_message == "Received unknown parameter: emial"
    assert err.param == "emial"
    assert err.json_body["error"]["type"] == "invalid_request_error"


def test_unknown_nested_parameter_names_its_path(stripe_client):
    with pytest.raises(stripe.InvalidRequestError) as caught:
        stripe_client.v1.customers.create(params={"address": {"town": "Paris"}})
    assert caught.value.user_message == "Received unknown parameter: address[town]"


def test_nested_params_are_decoded(stripe_client):
    customer = stripe_client.v1.customers.create(
        params={
            "address": {"line1": "1 Rue de Rivoli", "city": "Paris", "country": "FR"},
            "preferred_locales": ["fr", "en"],
            "metadata": {"account": "42"},
            "tax_id_data": [{"type": "eu_vat", "value": "FR12345678901"}],
        }
    )
    assert customer.address.city == "Paris"
    assert customer.address.postal_code is None
    assert customer.preferred_locales == ["fr", "en"]
    assert customer.metadata.to_dict() == {"account": "42"}
    tax_ids = stripe_client.v1.customers.tax_ids.list(customer.id)
    assert [t.value for t in tax_ids.data] == ["FR12345678901"]


def test_invalid_integer_is_400(stripe_client):
    with pytest.raises(stripe.InvalidRequestError) as caught:
        stripe_client.v1.customers.create(params={"balance": "lots"})
    assert caught.value.user_message == "Invalid integer: lots"


def test_missing_object_is_404_resource_missing(stripe_client):
    with pytest.raises(stripe.InvalidRequestError) as caught:
        stripe_client.v1.customers.retrieve("cus_nope")
    err = caught.value
    assert err.http_status == 404
    assert err.code == "resource_missing"
    assert err.user_message == "No such customer: 'cus_nope'"
    assert err.json_body["error"]["doc_url"].endswith("/resource_missing")


def test_unknown_url_is_404(stripe_client):
    with pytest.raises(stripe.InvalidRequestError) as caught:
        stripe_client.raw_request("get", "/v1/nothing_here")
    assert caught.value.http_status == 404
    assert "Unrecognized request URL" in caught.value.user_message


def test_pagination_newest_first_with_cursors(stripe_client, make_customer):
    ids = [make_customer().id for _ in range(5)]
    first = stripe_client.v1.customers.list(params={"limit": 2})
    assert [c.id for c in first.data] == ids[::-1][:2]
    assert first.has_more is True
    assert first.url == "/v1/customers"
    second = stripe_client.v1.customers.list(
        params={"limit": 2, "starting_after": first.data[-1].id}
    )
    assert [c.id for c in second.data] == ids[::-1][2:4]
    last = stripe_client.v1.customers.list(
        params={"limit": 2, "starting_after": second.data[-1].id}
    )
    assert [c.id for c in last.data] == [ids[0]]
    assert last.has_more is False
    back = stripe_client.v1.customers.list(params={"limit": 2, "ending_before": last.data[0].id})
    assert [c.id for c in back.data] == ids[::-1][2:4]
    assert back.has_more is True
    assert [c.id for c in first.auto_paging_iter()] == ids[::-1]


def test_default_and_maximum_limit(stripe_client, make_customer):
    for _ in range(12):
        make_customer()
    assert len(stripe_client.v1.customers.list().data) == 10
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.customers.list(params={"limit": 101})


def test_expand_dotted_paths_and_list_data(stripe_client, make_customer, make_payment):
    customer = make_customer()
    pi = make_payment(
        customer=customer.id, expand=["latest_charge.balance_transaction", "customer"]
    )
    assert pi.customer.email == customer.email
    assert pi.latest_charge.object == "charge"
    assert pi.latest_charge.balance_transaction.object == "balance_transaction"
    listed = stripe_client.v1.payment_intents.list(params={"expand": ["data.customer"]})
    assert listed.data[0].customer.id == customer.id
    with pytest.raises(stripe.InvalidRequestError) as caught:
        stripe_client.v1.customers.retrieve(customer.id, params={"expand": ["email"]})
    assert "cannot be expanded" in caught.value.user_message


def test_metadata_merges_and_empty_value_deletes(stripe_client, make_customer):
    customer = make_customer(metadata={"a": "1", "b": "2"})
    updated = stripe_client.v1.customers.update(
        customer.id, params={"metadata": {"b": "", "c": "3"}}
    )
    assert updated.metadata.to_dict() == {"a": "1", "c": "3"}
    cleared = stripe_client.v1.customers.update(customer.id, params={"metadata": ""})
    assert cleared.metadata.to_dict() == {}


def test_idempotent_replay_returns_first_response(stripe_client):
    options = {"idempotency_key": "create-customer-1"}
    first = stripe_client.v1.customers.create(params={"email": "x@example.com"}, options=options)
    again = stripe_client.v1.customers.create(params={"email": "x@example.com"}, options=options)
    assert again.id == first.id
    assert again.last_response.headers.get("Idempotent-Replayed") == "true"
    assert first.last_response.headers.get("Idempotent-Replayed") is None
    assert len(stripe_client.v1.customers.list().data) == 1


def test_idempotent_replay_of_a_card_error(stripe_client):
    options = {"idempotency_key": "declined-payment"}
    params = {
        "amount": 500,
        "currency": "usd",
        "payment_method": "pm_card_visa_chargeDeclined",
        "confirm": True,
    }
    with pytest.raises(stripe.CardError) as first:
        stripe_client.v1.payment_intents.create(params=params, options=options)
    with pytest.raises(stripe.CardError) as again:
        stripe_client.v1.payment_intents.create(params=params, options=options)
    assert again.value.headers.get("Idempotent-Replayed") == "true"
    assert (
        again.value.json_body["error"]["payment_intent"]["id"]
        == first.value.json_body["error"]["payment_intent"]["id"]
    )
    assert len(stripe_client.v1.payment_intents.list().data) == 1


def test_same_key_with_other_params_is_idempotency_error(stripe_client):
    options = {"idempotency_key": "reused"}
    stripe_client.v1.customers.create(params={"email": "one@example.com"}, options=options)
    with pytest.raises(stripe.IdempotencyError) as caught:
        stripe_client.v1.customers.create(params={"email": "two@example.com"}, options=options)
    assert caught.value.http_status == 400
    assert caught.value.json_body["error"]["type"] == "idempotency_error"


def test_works_mounted_under_a_url_prefix(tmp_path):
    sandbox_app = create_sandbox_app(
        {"SANDBOX_DB": str(tmp_path / "mounted.db"), "SANDBOX_DELIVERY": "manual"}
    )
    portal_stand_in = Flask("outer")
    serving = serve_wsgi(DispatcherMiddleware(portal_stand_in, {"/_stripe": sandbox_app}))
    try:
        base = next(serving)
        client = stripe.StripeClient(
            API_KEY, base_addresses={"api": f"{base}/_stripe"}, max_network_retries=0
        )
        customer = client.v1.customers.create(params={"email": "mounted@example.com"})
        assert client.v1.customers.retrieve(customer.id).email == "mounted@example.com"
        pi = client.v1.payment_intents.create(
            params={
                "amount": 1000,
                "currency": "usd",
                "payment_method": "pm_card_authenticationRequired",
                "confirm": True,
                "return_url": "https://portal.test/return",
            }
        )
        challenge = pi.next_action.redirect_to_url.url
        assert challenge.startswith(f"{base}/_stripe/three_d_secure/{pi.id}")
    finally:
        serving.close()


def test_numeric_metadata_keys_stay_metadata(stripe_client):
    customer = stripe_client.v1.customers.create(params={"metadata": {"0": "zero", "1": "one"}})
    assert customer.metadata.to_dict() == {"0": "zero", "1": "one"}


def test_search_pages(stripe_client, make_customer):
    for _ in range(3):
        make_customer(metadata={"cohort": "a"})
    first = stripe_client.v1.customers.search(
        params={"query": "metadata['cohort']:'a'", "limit": 2}
    )
    assert len(first.data) == 2 and first.has_more and first.next_page
    rest = stripe_client.v1.customers.search(
        params={"query": "metadata['cohort']:'a'", "limit": 2, "page": first.next_page}
    )
    assert len(rest.data) == 1 and rest.has_more is False and rest.next_page is None
    assert {c.id for c in first.data}.isdisjoint({c.id for c in rest.data})


def test_publishable_key_reads_an_intent_with_its_client_secret(sandbox, stripe_client):
    pi = stripe_client.v1.payment_intents.create(params={"amount": 1000, "currency": "usd"})
    browser = sandbox.client(key="pk_test_browser")
    seen = browser.v1.payment_intents.retrieve(pi.id, params={"client_secret": pi.client_secret})
    assert seen.id == pi.id
    with pytest.raises(stripe.InvalidRequestError):
        browser.v1.payment_intents.retrieve(pi.id, params={"client_secret": "pi_x_secret_wrong"})
    with pytest.raises(stripe.AuthenticationError):
        browser.v1.payment_intents.list()
    pm = browser.v1.payment_methods.create(
        params={
            "type": "card",
            "card": {"number": "4242424242424242", "exp_month": 1, "exp_year": 2031, "cvc": "314"},
        }
    )
    confirmed = browser.v1.payment_intents.confirm(
        pi.id, params={"payment_method": pm.id, "client_secret": pi.client_secret}
    )
    assert confirmed.status == "succeeded"
