"""Invoices: manual invoices, status transitions, totals with coupons and taxes, currencies,
tiered prices and the hosted page / PDF."""

from __future__ import annotations

import urllib.request

import pytest
import stripe

from tests.sandbox.billing_helpers import customer, event_types, fixture_keys, price, subscribe


def manual_invoice(client, cus, *amounts, currency="usd", **params):
    for amount in amounts:
        client.v1.invoice_items.create(
            params={
                "customer": cus.id,
                "amount": amount,
                "currency": currency,
                "description": "Setup",
            }
        )
    return client.v1.invoices.create(
        params={
            "customer": cus.id,
            "currency": currency,
            "pending_invoice_items_behavior": "include",
            **params,
        }
    )


def test_manual_invoice_lifecycle_and_shapes(stripe_client):
    cus = customer(stripe_client)
    invoice = manual_invoice(stripe_client, cus, 1200, 800)
    assert (invoice.status, invoice.billing_reason, invoice.total) == ("draft", "manual", 2000)
    assert invoice.number is None
    assert set(invoice.to_dict()) == fixture_keys("invoice")
    assert set(invoice.lines.data[0].to_dict()) == fixture_keys("line_item")
    item = stripe_client.v1.invoice_items.list(params={"invoice": invoice.id}).data[0]
    assert set(item.to_dict()) == fixture_keys("invoiceitem")
    finalized = stripe_client.v1.invoices.finalize_invoice(
        invoice.id, params={"auto_advance": False}
    )
    prefix = stripe_client.v1.customers.retrieve(cus.id).invoice_prefix
    assert (finalized.status, finalized.number) == ("open", f"{prefix}-0001")
    assert finalized.hosted_invoice_url and finalized.invoice_pdf
    paid = stripe_client.v1.invoices.pay(invoice.id)
    assert (paid.status, paid.amount_paid, paid.amount_remaining) == ("paid", 2000, 0)
    lines = stripe_client.v1.invoices.line_items.list(invoice.id, params={"limit": 1})
    assert len(lines.data) == 1 and lines.has_more
    assert event_types(stripe_client, ("invoice",)) == [
        "invoiceitem.created",
        "invoiceitem.created",
        "invoice.created",
        "invoice.finalized",
        "invoice.paid",
        "invoice.payment_succeeded",
    ]


def test_void_and_uncollectible(stripe_client):
    cus = customer(stripe_client)
    a = manual_invoice(stripe_client, cus, 500)
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.invoices.void_invoice(a.id)
    stripe_client.v1.invoices.finalize_invoice(a.id)
    voided = stripe_client.v1.invoices.void_invoice(a.id)
    assert voided.status == "void" and voided.status_transitions.voided_at
    b = manual_invoice(stripe_client, cus, 700)
    stripe_client.v1.invoices.finalize_invoice(b.id)
    lost = stripe_client.v1.invoices.mark_uncollectible(b.id)
    assert lost.status == "uncollectible"
    assert {"invoice.voided", "invoice.marked_uncollectible"} <= set(
        event_types(stripe_client, ("invoice.",))
    )
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.invoices.pay(a.id)


def test_pay_with_declining_card_answers_402_and_counts_the_attempt(stripe_client):
    cus = customer(stripe_client, card="pm_card_chargeCustomerFail")
    invoice = manual_invoice(stripe_client, cus, 900)
    with pytest.raises(stripe.CardError):
        stripe_client.v1.invoices.pay(invoice.id)
    invoice = stripe_client.v1.invoices.retrieve(invoice.id)
    assert (invoice.status, invoice.attempt_count, invoice.attempted) == ("open", 1, True)
    assert "invoice.payment_failed" in event_types(stripe_client, ("invoice.",))


def test_coupon_and_exclusive_tax_on_subscription_invoice(stripe_client):
    coupon = stripe_client.v1.coupons.create(params={"percent_off": 20, "duration": "forever"})
    vat = stripe_client.v1.tax_rates.create(
        params={"display_name": "VAT", "percentage": 10, "inclusive": False}
    )
    cus = customer(stripe_client)
    sub = subscribe(
        stripe_client,
        cus,
        price(stripe_client, 2500),
        discounts=[{"coupon": coupon.id}],
        default_tax_rates=[vat.id],
        expand=["latest_invoice"],
    )
    invoice = sub.latest_invoice
    assert invoice.subtotal == 2500
    assert invoice.total_discount_amounts[0].amount == 500
    assert invoice.total_taxes[0].amount == 200 and invoice.total_taxes[0].taxable_amount == 2000
    assert (invoice.total, invoice.total_excluding_tax, invoice.amount_paid) == (2200, 2000, 2200)
    assert invoice.discounts == sub.discounts and len(sub.discounts) == 1
    assert invoice.lines.data[0].discount_amounts[0].amount == 500


def test_inclusive_tax_and_amount_off_on_manual_invoice(stripe_client):
    coupon = stripe_client.v1.coupons.create(
        params={"amount_off": 300, "currency": "usd", "duration": "once"}
    )
    vat = stripe_client.v1.tax_rates.create(
        params={"display_name": "VAT", "percentage": 20, "inclusive": True}
    )
    cus = customer(stripe_client)
    invoice = manual_invoice(
        stripe_client, cus, 1000, 500, default_tax_rates=[vat.id], discounts=[{"coupon": coupon.id}]
    )
    assert invoice.total == 1200
    assert invoice.total_taxes[0].amount == 200
    assert invoice.total_excluding_tax == 1000


@pytest.mark.parametrize(
    "currency,amount,quantity,shown",
    [("jpy", 1500, 3, "¥4,500"), ("kwd", 1500, 3, "KWD4.500"), ("usd", 1999, 2, "$39.98")],
)
def test_zero_and_three_decimal_currencies(stripe_client, currency, amount, quantity, shown):
    cus = customer(stripe_client)
    sub = stripe_client.v1.subscriptions.create(
        params={
            "customer": cus.id,
            "items": [{"price": price(stripe_client, amount, currency).id, "quantity": quantity}],
            "expand": ["latest_invoice"],
        }
    )
    invoice = sub.latest_invoice
    assert (invoice.currency, invoice.amount_paid) == (currency, amount * quantity)
    with urllib.request.urlopen(invoice.hosted_invoice_url) as response:
        assert shown in response.read().decode()


@pytest.mark.parametrize(
    "mode,expected", [("graduated", 5 * 500 + 100 + 3 * 400), ("volume", 8 * 400)]
)
def test_tiered_prices(stripe_client, mode, expected):
    tiered = price(
        stripe_client,
        tiers_mode=mode,
        billing_scheme="tiered",
        tiers=[
            {"up_to": 5, "unit_amount": 500, "flat_amount": 100},
            {"up_to": "inf", "unit_amount": 400},
        ],
    )
    cus = customer(stripe_client)
    sub = stripe_client.v1.subscriptions.create(
        params={
            "customer": cus.id,
            "items": [{"price": tiered.id, "quantity": 8}],
            "expand": ["latest_invoice"],
        }
    )
    assert sub.latest_invoice.amount_paid == expected


def test_invoice_pdf(stripe_client):
    cus = customer(stripe_client)
    invoice = stripe_client.v1.invoices.finalize_invoice(manual_invoice(stripe_client, cus, 800).id)
    with urllib.request.urlopen(invoice.invoice_pdf) as response:
        assert response.headers["Content-Type"] == "application/pdf"
        assert response.read().startswith(b"%PDF")


def test_invoice_keeps_the_customer_details_it_was_finalized_with(stripe_client):
    """Follows https://docs.stripe.com/api/invoices/object#invoice_object-customer_tax_ids:
    customer_name, customer_address and customer_tax_ids equal the customer's until the
    invoice is finalized, and are no longer updated after that."""
    cus = customer(stripe_client, name="Ακμή ΑΕ")
    draft = manual_invoice(stripe_client, cus, 1000)
    assert draft.customer_tax_ids == []
    stripe_client.v1.customers.tax_ids.create(
        cus.id, params={"type": "eu_vat", "value": "DE123456789"})
    stripe_client.v1.customers.update(cus.id, params={
        "name": "Acme GmbH", "address": {"line1": "Hauptstr. 1", "city": "Berlin",
                                         "postal_code": "10115", "country": "DE"}})
    final = stripe_client.v1.invoices.finalize_invoice(draft.id)
    assert final.customer_name == "Acme GmbH"
    assert final.customer_address.city == "Berlin"
    assert [(t.type, t.value) for t in final.customer_tax_ids] == [("eu_vat", "DE123456789")]
    stripe_client.v1.customers.update(cus.id, params={"name": "Renamed Ltd"})
    again = stripe_client.v1.invoices.retrieve(draft.id)
    assert again.customer_name == "Acme GmbH"
    assert len(again.customer_tax_ids) == 1
