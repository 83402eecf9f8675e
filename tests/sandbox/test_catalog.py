"""Products, prices, coupons, promotion codes and tax rates."""

from __future__ import annotations

import time

import pytest
import stripe


@pytest.fixture
def make_product(stripe_client):
    """Return a builder of products: make_product(name="Pro", ...)."""

    def make(**params):
        params.setdefault("name", "Pro plan")
        return stripe_client.v1.products.create(params=params)

    return make


def test_product_lifecycle(stripe_client, make_product):
    product = make_product(description="Everything", metadata={"tier": "pro"})
    assert product.active is True and product.default_price is None
    price = stripe_client.v1.prices.create(
        params={
            "product": product.id,
            "currency": "usd",
            "unit_amount": 1500,
            "recurring": {"interval": "month"},
        }
    )
    product = stripe_client.v1.products.update(
        product.id, params={"default_price": price.id, "active": False}
    )
    assert product.default_price == price.id and product.active is False
    assert stripe_client.v1.products.list(params={"active": False}).data[0].id == product.id
    assert stripe_client.v1.products.list(params={"active": True}).data == []
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.products.delete(product.id)
    empty = make_product(name="Empty")
    assert stripe_client.v1.products.delete(empty.id).deleted is True
    found = stripe_client.v1.products.search(params={"query": "metadata['tier']:'pro'"})
    assert [p.id for p in found.data] == [product.id]


def test_product_with_default_price_data(stripe_client, make_product):
    product = make_product(
        default_price_data={
            "currency": "eur",
            "unit_amount": 900,
            "recurring": {"interval": "year"},
        }
    )
    price = stripe_client.v1.prices.retrieve(product.default_price)
    assert (price.unit_amount, price.currency, price.recurring.interval) == (900, "eur", "year")


def test_recurring_and_one_time_prices(stripe_client, make_product):
    product = make_product()
    monthly = stripe_client.v1.prices.create(
        params={
            "product": product.id,
            "currency": "usd",
            "unit_amount": 1000,
            "recurring": {"interval": "week", "interval_count": 2},
            "nickname": "Biweekly",
        }
    )
    assert monthly.type == "recurring"
    assert (monthly.recurring.interval, monthly.recurring.interval_count) == ("week", 2)
    assert monthly.recurring.usage_type == "licensed" and str(monthly.unit_amount_decimal) == "1000"
    once = stripe_client.v1.prices.create(
        params={"product": product.id, "currency": "jpy", "unit_amount": 500}
    )
    assert once.type == "one_time" and once.recurring is None
    assert [p.id for p in stripe_client.v1.prices.list(params={"type": "one_time"}).data] == [
        once.id
    ]
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.prices.create(
            params={
                "product": product.id,
                "currency": "usd",
                "unit_amount": 1,
                "recurring": {"interval": "month", "interval_count": 40},
            }
        )
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.prices.create(
            params={"product": product.id, "currency": "xyz", "unit_amount": 1}
        )


def test_tiered_price_shows_tiers_only_when_expanded(stripe_client, make_product):
    product = make_product()
    price = stripe_client.v1.prices.create(
        params={
            "product": product.id,
            "currency": "usd",
            "billing_scheme": "tiered",
            "tiers_mode": "graduated",
            "recurring": {"interval": "month"},
            "tiers": [
                {"up_to": 10, "unit_amount": 100},
                {"up_to": "inf", "unit_amount": 80, "flat_amount": 500},
            ],
        }
    )
    assert price.billing_scheme == "tiered" and price.unit_amount is None
    assert "tiers" not in price
    expanded = stripe_client.v1.prices.retrieve(price.id, params={"expand": ["tiers"]})
    assert [(t.up_to, t.unit_amount, t.flat_amount) for t in expanded.tiers] == [
        (10, 100, None),
        (None, 80, 500),
    ]
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.prices.create(
            params={
                "product": product.id,
                "currency": "usd",
                "billing_scheme": "tiered",
                "tiers_mode": "volume",
                "tiers": [{"up_to": 10, "unit_amount": 100}],
            }
        )


def test_prices_are_immutable(stripe_client, make_product):
    price = stripe_client.v1.prices.create(
        params={"product": make_product().id, "currency": "usd", "unit_amount": 100}
    )
    with pytest.raises(stripe.InvalidRequestError) as caught:
        stripe_client.v1.prices.update(price.id, params={"unit_amount": 200})
    assert caught.value.user_message == "Received unknown parameter: unit_amount"
    updated = stripe_client.v1.prices.update(price.id, params={"active": False, "nickname": "Old"})
    assert (updated.active, updated.nickname) == (False, "Old")


def test_lookup_keys_and_transfer(stripe_client, make_product):
    product = make_product()
    old = stripe_client.v1.prices.create(
        params={
            "product": product.id,
            "currency": "usd",
            "unit_amount": 100,
            "lookup_key": "pro_monthly",
        }
    )
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.prices.create(
            params={
                "product": product.id,
                "currency": "usd",
                "unit_amount": 120,
                "lookup_key": "pro_monthly",
            }
        )
    new = stripe_client.v1.prices.create(
        params={
            "product": product.id,
            "currency": "usd",
            "unit_amount": 120,
            "lookup_key": "pro_monthly",
            "transfer_lookup_key": True,
        }
    )
    found = stripe_client.v1.prices.list(
        params={"lookup_keys": ["pro_monthly"], "expand": ["data.product"]}
    )
    assert [p.id for p in found.data] == [new.id]
    assert found.data[0].product.name == product.name
    assert stripe_client.v1.prices.retrieve(old.id).lookup_key is None
    searched = stripe_client.v1.prices.search(params={"query": "lookup_key:'pro_monthly'"})
    assert [p.id for p in searched.data] == [new.id]


def test_metered_price_needs_a_meter(stripe_client, make_product):
    with pytest.raises(stripe.InvalidRequestError) as caught:
        stripe_client.v1.prices.create(
            params={
                "product": make_product().id,
                "currency": "usd",
                "unit_amount": 5,
                "recurring": {"interval": "month", "usage_type": "metered"},
            }
        )
    assert caught.value.param == "recurring[meter]"


def test_coupons(stripe_client):
    percent = stripe_client.v1.coupons.create(
        params={
            "percent_off": 25.5,
            "duration": "repeating",
            "duration_in_months": 3,
            "name": "Launch",
        }
    )
    assert (percent.percent_off, percent.duration_in_months, percent.valid) == (25.5, 3, True)
    fixed = stripe_client.v1.coupons.create(
        params={
            "id": "TENOFF",
            "amount_off": 1000,
            "currency": "usd",
            "duration": "once",
            "max_redemptions": 5,
            "redeem_by": int(time.time()) + 3600,
        }
    )
    assert fixed.id == "TENOFF" and fixed.times_redeemed == 0
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.coupons.create(params={"amount_off": 100, "duration": "once"})
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.coupons.create(
            params={"percent_off": 10, "amount_off": 100, "currency": "usd"}
        )
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.coupons.create(params={"percent_off": 10, "duration": "repeating"})
    renamed = stripe_client.v1.coupons.update(fixed.id, params={"name": "Ten off"})
    assert renamed.name == "Ten off"
    assert stripe_client.v1.coupons.delete(percent.id).deleted is True
    assert [c.id for c in stripe_client.v1.coupons.list().data] == ["TENOFF"]


def test_promotion_codes(stripe_client, make_customer):
    coupon = stripe_client.v1.coupons.create(params={"percent_off": 20, "duration": "forever"})
    customer = make_customer()
    promo = stripe_client.v1.promotion_codes.create(
        params={
            "promotion": {"type": "coupon", "coupon": coupon.id},
            "code": "FALL20",
            "max_redemptions": 10,
            "customer": customer.id,
            "restrictions": {
                "first_time_transaction": True,
                "minimum_amount": 1000,
                "minimum_amount_currency": "usd",
            },
        }
    )
    assert promo.promotion.coupon == coupon.id and promo.promotion.type == "coupon"
    assert promo.active and promo.restrictions.minimum_amount == 1000
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.promotion_codes.create(
            params={"promotion": {"type": "coupon", "coupon": coupon.id}, "code": "fall20"}
        )
    by_code = stripe_client.v1.promotion_codes.list(params={"code": "FALL20"})
    assert [p.id for p in by_code.data] == [promo.id]
    off = stripe_client.v1.promotion_codes.update(promo.id, params={"active": False})
    assert off.active is False
    expired = stripe_client.v1.promotion_codes.create(
        params={
            "promotion": {"type": "coupon", "coupon": coupon.id},
            "expires_at": int(time.time()) - 1,
        }
    )
    assert expired.active is False and len(expired.code) == 8


def test_tax_rates(stripe_client):
    rate = stripe_client.v1.tax_rates.create(
        params={
            "display_name": "VAT",
            "percentage": 19,
            "inclusive": False,
            "jurisdiction": "DE",
            "country": "DE",
            "tax_type": "vat",
        }
    )
    assert (rate.percentage, rate.inclusive, rate.jurisdiction, rate.active) == (
        19,
        False,
        "DE",
        True,
    )
    inclusive = stripe_client.v1.tax_rates.create(
        params={"display_name": "MwSt", "percentage": 7.5, "inclusive": True}
    )
    assert inclusive.percentage == 7.5
    archived = stripe_client.v1.tax_rates.update(rate.id, params={"active": False})
    assert archived.active is False
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.tax_rates.update(rate.id, params={"percentage": 20})
    active = stripe_client.v1.tax_rates.list(params={"active": True})
    assert [r.id for r in active.data] == [inclusive.id]
    types = [e.type for e in stripe_client.v1.events.list(params={"type": "tax_rate.*"}).data]
    assert types == ["tax_rate.updated", "tax_rate.created", "tax_rate.created"]


def test_metered_price_on_a_meter(stripe_client, make_product):
    meter = stripe_client.v1.billing.meters.create(
        params={
            "display_name": "API calls",
            "event_name": "api_call",
            "default_aggregation": {"formula": "sum"},
        }
    )
    price = stripe_client.v1.prices.create(
        params={
            "product": make_product().id,
            "currency": "usd",
            "unit_amount": 5,
            "recurring": {"interval": "month", "usage_type": "metered", "meter": meter.id},
        }
    )
    assert (price.recurring.usage_type, price.recurring.meter) == ("metered", meter.id)
    with pytest.raises(stripe.InvalidRequestError) as caught:
        stripe_client.v1.prices.create(
            params={
                "product": price.product,
                "currency": "usd",
                "unit_amount": 5,
                "recurring": {"interval": "month", "usage_type": "metered", "meter": "mtr_missing"},
            }
        )
    assert caught.value.http_status == 404
