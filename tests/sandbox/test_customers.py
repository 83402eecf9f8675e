"""Customers, tax ids and customer events."""

from __future__ import annotations

import pytest
import stripe


def test_create_retrieve_update_delete(stripe_client):
    customer = stripe_client.v1.customers.create(
        params={
            "email": "jenny@example.com",
            "name": "Jenny Rosen",
            "phone": "+15555550100",
            "balance": -500,
            "address": {"country": "DE", "city": "Berlin"},
        }
    )
    assert (customer.email, customer.name, customer.balance) == (
        "jenny@example.com",
        "Jenny Rosen",
        -500,
    )
    assert customer.invoice_prefix and customer.next_invoice_sequence == 1
    fetched = stripe_client.v1.customers.retrieve(customer.id)
    assert fetched.to_dict() == customer.to_dict()
    updated = stripe_client.v1.customers.update(
        customer.id, params={"name": "J. Rosen", "description": ""}
    )
    assert updated.name == "J. Rosen" and updated.address.city == "Berlin"
    deleted = stripe_client.v1.customers.delete(customer.id)
    assert deleted.deleted is True
    stub = stripe_client.v1.customers.retrieve(customer.id)
    assert stub.to_dict().get("deleted") is True
    assert stripe_client.v1.customers.list().data == []
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.customers.update(customer.id, params={"name": "x"})


def test_list_by_email_and_search(stripe_client, make_customer):
    make_customer(email="a@example.com", metadata={"plan": "gold"})
    target = make_customer(email="b@example.com", name="Bea", metadata={"plan": "silver"})
    listed = stripe_client.v1.customers.list(params={"email": "b@example.com"})
    assert [c.id for c in listed.data] == [target.id]
    by_email = stripe_client.v1.customers.search(params={"query": "email:'b@example.com'"})
    assert [c.id for c in by_email.data] == [target.id]
    assert by_email.object == "search_result"
    by_meta = stripe_client.v1.customers.search(params={"query": "metadata['plan']:'silver'"})
    assert [c.id for c in by_meta.data] == [target.id]
    both = stripe_client.v1.customers.search(
        params={"query": "metadata['plan']:'gold' OR name:'Bea'"}
    )
    assert len(both.data) == 2
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.customers.search(params={"query": "nonsense"})


def test_default_payment_method_must_belong_to_customer(stripe_client, make_customer):
    customer = make_customer()
    stranger = stripe_client.v1.payment_methods.create(params={"payment_method": "pm_card_visa"})
    with pytest.raises(stripe.InvalidRequestError) as caught:
        stripe_client.v1.customers.update(
            customer.id, params={"invoice_settings": {"default_payment_method": stranger.id}}
        )
    assert caught.value.param == "invoice_settings[default_payment_method]"
    created = make_customer(payment_method="pm_card_mastercard")
    pm = stripe_client.v1.customers.payment_methods.list(created.id).data[0]
    assert pm.card.brand == "mastercard"


def test_tax_ids(stripe_client, make_customer):
    customer = make_customer()
    tax_id = stripe_client.v1.customers.tax_ids.create(
        customer.id, params={"type": "eu_vat", "value": "DE123456789"}
    )
    assert (tax_id.country, tax_id.customer, tax_id.verification.status) == (
        "DE",
        customer.id,
        "pending",
    )
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.customers.tax_ids.create(
            customer.id, params={"type": "eu_vat", "value": "12"}
        )
    assert len(stripe_client.v1.customers.tax_ids.list(customer.id).data) == 1
    stripe_client.v1.customers.tax_ids.delete(customer.id, tax_id.id)
    assert stripe_client.v1.customers.tax_ids.list(customer.id).data == []
    events = stripe_client.v1.events.list(params={"type": "customer.tax_id.*"})
    assert [e.type for e in events.data] == ["customer.tax_id.deleted", "customer.tax_id.created"]


def test_customer_events_carry_previous_attributes(stripe_client, make_customer):
    customer = make_customer(email="old@example.com", metadata={"a": "1"})
    stripe_client.v1.customers.update(
        customer.id, params={"email": "new@example.com", "metadata": {"b": "2"}}
    )
    events = stripe_client.v1.events.list(
        params={"types": ["customer.created", "customer.updated"]}
    )
    updated, created = events.data
    assert (updated.type, created.type) == ("customer.updated", "customer.created")
    assert updated.data.object.email == "new@example.com"
    assert updated.data.previous_attributes.to_dict() == {
        "email": "old@example.com",
        "metadata": {"b": None},
    }
    assert updated.api_version == "2026-10-28.endive"
    assert updated.request.id.startswith("req_")
    assert updated.request.idempotency_key
    assert "previous_attributes" not in created.data.to_dict()
    same = stripe_client.v1.events.retrieve(updated.id)
    assert same.id == updated.id and same.pending_webhooks == 0


def test_events_filter_by_created(stripe_client, make_customer):
    make_customer()
    event = stripe_client.v1.events.list().data[0]
    assert stripe_client.v1.events.list(params={"created": {"gte": event.created}}).data
    assert stripe_client.v1.events.list(params={"created": {"gt": event.created + 5}}).data == []


def test_objects_of_a_test_clock_customer_read_the_clock(stripe_client):
    frozen = 1_767_225_600  # 2026-01-01T00:00:00Z
    clock = stripe_client.v1.test_helpers.test_clocks.create(params={"frozen_time": frozen})
    customer = stripe_client.v1.customers.create(
        params={"test_clock": clock.id, "payment_method": "pm_card_visa"}
    )
    assert (customer.test_clock, customer.created) == (clock.id, frozen)
    pi = stripe_client.v1.payment_intents.create(
        params={
            "amount": 1000,
            "currency": "usd",
            "customer": customer.id,
            "confirm": True,
            "payment_method": stripe_client.v1.customers.payment_methods.list(customer.id)
            .data[0]
            .id,
            "off_session": True,
        }
    )
    assert pi.created == frozen
    assert stripe_client.v1.charges.retrieve(pi.latest_charge).created == frozen
    created = stripe_client.v1.events.list(params={"type": "customer.created"}).data[0]
    assert created.created == frozen
    listed = stripe_client.v1.customers.list(params={"test_clock": clock.id})
    assert [c.id for c in listed.data] == [customer.id]
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.customers.create(params={"test_clock": "clock_missing"})
