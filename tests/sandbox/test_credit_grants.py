"""Billing credits: credit grants, balance summaries, balance transactions, credits on invoices.

Docs followed: docs.stripe.com/billing/subscriptions/usage-based/billing-credits and the API
reference pages api/billing/credit-grant, api/billing/credit-balance-summary,
api/billing/credit-balance-transaction.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import stripe

from tests.sandbox.billing_helpers import customer, event_types, fixture_keys, price, subscribe
from tests.sandbox.test_meters import meter, report

START = int(datetime(2026, 5, 1, tzinfo=UTC).timestamp())
HOUR = 3600
DAY = 86_400


def grant(client, cus, value=1000, **params):
    body = {
        "customer": cus.id,
        "amount": {"type": "monetary", "monetary": {"currency": "usd", "value": value}},
        "applicability_config": {"scope": {"price_type": "metered"}},
        **params,
    }
    return client.v1.billing.credit_grants.create(params=body)


def summary(client, cus, **flt):
    flt = flt or {"type": "applicability_scope", "applicability_scope": {"price_type": "metered"}}
    return client.v1.billing.credit_balance_summary.retrieve(
        params={"customer": cus.id, "filter": flt}
    )


def balance_values(client, cus):
    entry = summary(client, cus).balances[0]
    return entry.available_balance.monetary.value, entry.ledger_balance.monetary.value


def transactions(client, cus, **params):
    page = client.v1.billing.credit_balance_transactions.list(
        params={"customer": cus.id, "limit": 100, **params}
    )
    return [(t.type, (t.credit or t.debit).type, (t.credit or t.debit).amount.monetary.value)
            for t in reversed(page.data)]


def test_grant_shapes_balance_and_lifecycle(stripe_client):
    """docs: api/billing/credit-grant (create, retrieve, list, update, void, expire)."""
    cus = customer(stripe_client, card=None)
    g = grant(stripe_client, cus, 1500, name="Pack", metadata={"pack": "s"})
    assert set(g.to_dict()) == fixture_keys("billing.credit_grant")
    assert (g.category, g.priority, g.voided_at, g.expires_at) == ("paid", 50, None, None)
    assert g.id.startswith("credgr_") and g.customer == cus.id
    assert stripe_client.v1.billing.credit_grants.retrieve(g.id).name == "Pack"
    assert [x.id for x in stripe_client.v1.billing.credit_grants.list(
        params={"customer": cus.id}).data] == [g.id]
    s = summary(stripe_client, cus)
    assert set(s.to_dict()) == fixture_keys("billing.credit_balance_summary")
    assert balance_values(stripe_client, cus) == (1500, 1500)
    txn = stripe_client.v1.billing.credit_balance_transactions.list(
        params={"customer": cus.id}).data[0]
    assert set(txn.to_dict()) == fixture_keys("billing.credit_balance_transaction")
    assert stripe_client.v1.billing.credit_balance_transactions.retrieve(txn.id).id == txn.id
    later = stripe_client.v1.billing.credit_grants.update(
        g.id, params={"expires_at": int(datetime.now(UTC).timestamp()) + 30 * DAY})
    assert later.expires_at is not None
    voided = stripe_client.v1.billing.credit_grants.void_grant(g.id)
    assert voided.voided_at is not None
    assert transactions(stripe_client, cus) == [
        ("credit", "credits_granted", 1500), ("debit", "credits_voided", 1500)]
    assert balance_values(stripe_client, cus) == (0, 0)
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.billing.credit_grants.void_grant(g.id)
    other = grant(stripe_client, cus, 300)
    stripe_client.v1.billing.credit_grants.expire(other.id)
    assert transactions(stripe_client, cus, credit_grant=other.id) == [
        ("credit", "credits_granted", 300), ("debit", "credits_expired", 300)]
    assert {"billing.credit_grant.created", "billing.credit_grant.updated",
            "billing.credit_balance_transaction.created"} <= set(
        event_types(stripe_client, ("billing.credit",)))


def test_bad_and_unsupported_parameters(stripe_client):
    """docs: api/billing/credit-grant/create; customer_account is not modelled (400 says so)."""
    cus = customer(stripe_client, card=None)
    licensed = price(stripe_client, 1000)
    with pytest.raises(stripe.InvalidRequestError) as caught:
        grant(stripe_client, cus, customer_account="acct_x")
    assert "sandbox does not support customer_account" in caught.value.user_message
    with pytest.raises(stripe.InvalidRequestError) as caught:
        grant(stripe_client, cus, applicability_config={"scope": {"prices": [{"id": licensed.id}]}})
    assert "metered" in caught.value.user_message
    with pytest.raises(stripe.InvalidRequestError):
        grant(stripe_client, cus, 0)
    with pytest.raises(stripe.InvalidRequestError):
        grant(stripe_client, cus, priority=101)
    with pytest.raises(stripe.InvalidRequestError) as caught:
        grant(stripe_client, cus, shoe_size=3)
    assert caught.value.code == "parameter_unknown"


def metered_setup(client, card="pm_card_visa"):
    m = meter(client)
    metered = price(client, 10, name="API calls",
                    recurring={"usage_type": "metered", "meter": m.id})
    licensed = price(client, 2000, name="Base")
    clock = client.v1.test_helpers.test_clocks.create(params={"frozen_time": START})
    cus = customer(client, card=card, test_clock=clock.id)
    return clock, cus, metered, licensed


def test_credits_pay_metered_lines_on_the_renewal_invoice(stripe_client):
    """docs: billing/subscriptions/usage-based/billing-credits (credits apply to metered prices
    at finalization, before tax, in priority order; not to licensed lines)."""
    clock, cus, metered, licensed = metered_setup(stripe_client)
    sub = subscribe(stripe_client, cus, licensed, metered)
    period_end = sub["items"].data[0].current_period_end
    low = grant(stripe_client, cus, 300, priority=10, category="promotional")
    high = grant(stripe_client, cus, 5000, priority=60)
    scoped = grant(stripe_client, cus, 100, applicability_config={
        "scope": {"prices": [{"id": metered.id}]}}, priority=20)
    stripe_client.v1.test_helpers.test_clocks.advance(
        clock.id, params={"frozen_time": START + 2 * HOUR})
    report(stripe_client, cus, "api_calls", 70, START + HOUR)  # 70 x 10 = 700 of usage
    stripe_client.v1.test_helpers.test_clocks.advance(
        clock.id, params={"frozen_time": period_end + 2 * HOUR})
    invoice = stripe_client.v1.invoices.list(params={"subscription": sub.id}).data[0]
    assert invoice.billing_reason == "subscription_cycle"
    by_price = {line.pricing.price_details.price: line for line in invoice.lines.data}
    usage_line, base_line = by_price[metered.id], by_price[licensed.id]
    assert usage_line.amount == 700 and base_line.amount == 2000
    assert base_line.pretax_credit_amounts == []
    credited = [(c.type, c.amount) for c in usage_line.pretax_credit_amounts]
    # priority 10 (300), then priority 20 (100), then priority 60 for the remaining 300
    assert credited == [("credit_balance_transaction", 300), ("credit_balance_transaction", 100),
                        ("credit_balance_transaction", 300)]
    assert sum(c.amount for c in invoice.total_pretax_credit_amounts) == 700
    assert invoice.subtotal == 2700
    assert invoice.total == invoice.amount_due == invoice.amount_paid == 2000
    assert invoice.status == "paid"
    applied = stripe_client.v1.billing.credit_balance_transactions.retrieve(
        usage_line.pretax_credit_amounts[0].credit_balance_transaction)
    assert applied.debit.type == "credits_applied"
    assert applied.debit.credits_applied.invoice == invoice.id
    assert applied.debit.credits_applied.invoice_line_item == usage_line.id
    assert applied.credit_grant == low.id
    assert balance_values(stripe_client, cus) == (4700, 4700)
    assert transactions(stripe_client, cus, credit_grant=scoped.id)[-1] == (
        "debit", "credits_applied", 100)
    assert transactions(stripe_client, cus, credit_grant=high.id)[-1] == (
        "debit", "credits_applied", 300)


def test_grant_expires_at_its_time_on_the_clock(stripe_client):
    """docs: api/billing/credit-grant/object (expires_at: credits expire at that time)."""
    clock = stripe_client.v1.test_helpers.test_clocks.create(params={"frozen_time": START})
    cus = customer(stripe_client, card=None, test_clock=clock.id)
    g = grant(stripe_client, cus, 800, expires_at=START + 3 * DAY)
    stripe_client.v1.test_helpers.test_clocks.advance(
        clock.id, params={"frozen_time": START + 2 * DAY})
    assert balance_values(stripe_client, cus) == (800, 800)
    stripe_client.v1.test_helpers.test_clocks.advance(
        clock.id, params={"frozen_time": START + 4 * DAY})
    assert transactions(stripe_client, cus, credit_grant=g.id) == [
        ("credit", "credits_granted", 800), ("debit", "credits_expired", 800)]
    assert balance_values(stripe_client, cus) == (0, 0)
    assert stripe_client.v1.billing.credit_grants.retrieve(g.id).expires_at == START + 3 * DAY


def test_voiding_an_invoice_gives_credits_back(stripe_client):
    """docs: changelog/acacia/2024-12-18/billing-credits-invoice-voiding."""
    clock, cus, metered, _ = metered_setup(stripe_client, card=None)
    sub = subscribe(stripe_client, cus, metered, collection_method="send_invoice",
                    days_until_due=30)
    period_end = sub["items"].data[0].current_period_end
    g = grant(stripe_client, cus, 250)
    stripe_client.v1.test_helpers.test_clocks.advance(
        clock.id, params={"frozen_time": START + 2 * HOUR})
    report(stripe_client, cus, "api_calls", 40, START + HOUR)
    stripe_client.v1.test_helpers.test_clocks.advance(
        clock.id, params={"frozen_time": period_end + 2 * HOUR})
    invoice = stripe_client.v1.invoices.list(params={"subscription": sub.id}).data[0]
    assert invoice.status == "open" and invoice.amount_due == 400 - 250
    assert balance_values(stripe_client, cus) == (0, 0)
    stripe_client.v1.invoices.void_invoice(invoice.id)
    assert transactions(stripe_client, cus, credit_grant=g.id) == [
        ("credit", "credits_granted", 250), ("debit", "credits_applied", 250),
        ("credit", "credits_application_invoice_voided", 250)]
    assert balance_values(stripe_client, cus) == (250, 250)


def test_grants_not_yet_effective_are_in_the_ledger_balance_only(stripe_client):
    """docs: api/billing/credit-balance-summary/object (available_balance vs ledger_balance)
    and api/billing/credit-grant/create (effective_at: when credits become usable)."""
    clock = stripe_client.v1.test_helpers.test_clocks.create(params={"frozen_time": START})
    cus = customer(stripe_client, card=None, test_clock=clock.id)
    m = meter(stripe_client)
    metered = price(stripe_client, 10, recurring={"usage_type": "metered", "meter": m.id})
    grant(stripe_client, cus, 400, effective_at=START + DAY)
    grant(stripe_client, cus, 100, applicability_config={
        "scope": {"prices": [{"id": metered.id}]}})
    assert balance_values(stripe_client, cus) == (100, 500)
    scoped = summary(stripe_client, cus, type="applicability_scope",
                     applicability_scope={"prices": [{"id": metered.id}]})
    assert scoped.balances[0].ledger_balance.monetary.value == 500
    stripe_client.v1.test_helpers.test_clocks.advance(
        clock.id, params={"frozen_time": START + 2 * DAY})
    assert balance_values(stripe_client, cus) == (500, 500)
