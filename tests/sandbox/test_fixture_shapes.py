"""Every object the sandbox serves carries exactly the top-level keys of Stripe's example.

The reference is the key lists copied from ``shared/stripe/fixtures3.json`` into
``fixture_keys.json`` (see fixture_reference.py); the copy is checked against the source
whenever shared/ is present.
"""

from __future__ import annotations

import json

import pytest

from tests.sandbox.conftest import sandbox_request
from tests.sandbox.fixture_reference import REFERENCE, SHARED


def test_stored_keys_match_stripes_fixtures():
    if not SHARED.exists():
        pytest.skip("shared/stripe/fixtures3.json is not beside this checkout")
    resources = json.loads(SHARED.read_text())["resources"]
    for name, keys in REFERENCE.items():
        assert keys == set(resources[name]), name


def shape_name(obj: dict) -> str:
    """Return the fixture name for an object (deleted stubs have their own fixture)."""
    return f"deleted_{obj['object']}" if obj.get("deleted") else obj["object"]


def assert_shape(obj: dict) -> None:
    """Compare an object's top-level keys with the fixture of its type."""
    name = shape_name(obj)
    assert name in REFERENCE, f"no fixture for {name}"
    expected, actual = REFERENCE[name], set(obj)
    assert actual == expected, (name, sorted(actual - expected), sorted(expected - actual))


@pytest.fixture
def every_object(stripe_client, make_customer):
    """Create one object of every type the sandbox serves and return them all as dicts."""
    c = stripe_client.v1
    objs = []
    customer = make_customer(payment_method="pm_card_visa", address={"country": "US"})
    product = c.products.create(params={"name": "Shape"})
    price = c.prices.create(
        params={
            "product": product.id,
            "currency": "usd",
            "unit_amount": 900,
            "recurring": {"interval": "month"},
        }
    )
    pm = c.payment_methods.list(params={"customer": customer.id}).data[0]
    si = c.setup_intents.create(
        params={"customer": customer.id, "payment_method": "pm_card_visa", "confirm": True}
    )
    pi = c.payment_intents.create(
        params={
            "amount": 900,
            "currency": "usd",
            "customer": customer.id,
            "payment_method": pm.id,
            "confirm": True,
            "off_session": True,
        }
    )
    refund = c.refunds.create(params={"payment_intent": pi.id, "amount": 100})
    coupon = c.coupons.create(params={"percent_off": 10, "duration": "once"})
    promo = c.promotion_codes.create(params={"promotion": {"type": "coupon", "coupon": coupon.id}})
    rate = c.tax_rates.create(params={"display_name": "VAT", "percentage": 20, "inclusive": False})
    tax_id = c.customers.tax_ids.create(
        customer.id, params={"type": "eu_vat", "value": "DE123456789"}
    )
    hook = c.webhook_endpoints.create(
        params={"url": "https://portal.test/hook", "enabled_events": ["*"]}
    )
    objs += [
        c.customers.retrieve(customer.id),
        c.products.retrieve(product.id),
        c.prices.retrieve(price.id),
        c.payment_methods.retrieve(pm.id),
        c.setup_intents.retrieve(si.id),
        c.payment_intents.retrieve(pi.id),
        c.charges.retrieve(pi.latest_charge),
        c.refunds.retrieve(refund.id),
        c.balance_transactions.retrieve(refund.balance_transaction),
        c.balance_transactions.retrieve(c.charges.retrieve(pi.latest_charge).balance_transaction),
        c.coupons.retrieve(coupon.id),
        c.promotion_codes.retrieve(promo.id),
        c.tax_rates.retrieve(rate.id),
        c.customers.tax_ids.retrieve(customer.id, tax_id.id),
        c.webhook_endpoints.retrieve(hook.id),
        c.events.list().data[0],
    ]
    extra_product = c.products.create(params={"name": "Gone"})
    objs += [
        c.products.delete(extra_product.id),
        c.coupons.delete(coupon.id),
        c.customers.tax_ids.delete(customer.id, tax_id.id),
        c.webhook_endpoints.delete(hook.id),
        c.customers.delete(make_customer().id),
    ]
    return [o.to_dict_recursive() if hasattr(o, "to_dict_recursive") else o.to_dict() for o in objs]


def test_every_served_object_matches_its_fixture(every_object):
    served = {shape_name(o) for o in every_object}
    assert served >= {
        "customer",
        "product",
        "price",
        "payment_method",
        "setup_intent",
        "payment_intent",
        "charge",
        "refund",
        "balance_transaction",
        "coupon",
        "promotion_code",
        "tax_rate",
        "tax_id",
        "webhook_endpoint",
        "event",
        "deleted_product",
        "deleted_coupon",
        "deleted_tax_id",
        "deleted_webhook_endpoint",
        "deleted_customer",
    }
    for obj in every_object:
        assert_shape(obj)


def test_every_event_payload_matches_its_fixture(every_object, stripe_client):
    events = list(stripe_client.v1.events.list(params={"limit": 100}).auto_paging_iter())
    assert len(events) > 20
    for event in events:
        payload = event.to_dict()
        assert_shape(payload)
        data_object = payload["data"]["object"]
        # Deletion events carry the full object as it was, not the stub.
        assert_shape({k: v for k, v in data_object.items() if k != "deleted"})


def test_webhook_endpoint_create_adds_only_the_secret(stripe_client):
    created = stripe_client.v1.webhook_endpoints.create(
        params={"url": "https://portal.test/hook", "enabled_events": ["*"]}
    ).to_dict()
    assert set(created) - REFERENCE["webhook_endpoint"] == {"secret"}


def test_errors_carry_stripe_fields(stripe_client):
    body = None
    try:
        stripe_client.v1.payment_intents.create(
            params={
                "amount": 900,
                "currency": "usd",
                "payment_method": "pm_card_visa_chargeDeclined",
                "confirm": True,
            }
        )
    except Exception as err:  # noqa: BLE001 - inspect whatever the SDK raised
        body = err.json_body["error"]  # type: ignore[attr-defined]
    assert body is not None
    assert {
        "type",
        "code",
        "decline_code",
        "message",
        "doc_url",
        "request_log_url",
        "payment_intent",
        "payment_method",
        "charge",
    } <= set(body)
    assert_shape(body["payment_intent"])
    deliveries = sandbox_request(stripe_client, "get", "/v1/sandbox/webhook_deliveries")
    assert deliveries["object"] == "list"
