"""Payment methods, setup and payment intents, test cards, 3-D Secure, charges and refunds."""

from __future__ import annotations

import pytest
import stripe

from tests.sandbox.conftest import sandbox_request


def card(stripe_client, number: str, cvc: str = "123"):
    """Create a card PaymentMethod from raw details, as the sandbox's Stripe.js does."""
    return stripe_client.v1.payment_methods.create(
        params={
            "type": "card",
            "card": {"number": number, "exp_month": 12, "exp_year": 2034, "cvc": cvc},
        }
    )


def pay(stripe_client, pm_id: str, **params):
    """Create and confirm a 10.00 USD PaymentIntent."""
    return stripe_client.v1.payment_intents.create(
        params={
            "amount": 1000,
            "currency": "usd",
            "payment_method": pm_id,
            "confirm": True,
            **params,
        }
    )


@pytest.mark.parametrize(
    "number,brand", [("4242424242424242", "visa"), ("5555555555554444", "mastercard")]
)
def test_success_cards(stripe_client, number, brand):
    pm = card(stripe_client, number)
    assert (pm.card.brand, pm.card.last4, pm.card.exp_year) == (brand, number[-4:], 2034)
    pi = pay(stripe_client, pm.id)
    assert pi.status == "succeeded"
    assert pi.amount_received == 1000
    charge = stripe_client.v1.charges.retrieve(pi.latest_charge)
    assert charge.paid and charge.captured and charge.status == "succeeded"
    assert charge.payment_method_details.card.brand == brand


def test_same_number_same_fingerprint(stripe_client):
    a, b = card(stripe_client, "4242424242424242"), card(stripe_client, "4242 4242 4242 4242")
    other = card(stripe_client, "5555555555554444")
    assert a.card.fingerprint == b.card.fingerprint != other.card.fingerprint


@pytest.mark.parametrize(
    "number,code,decline_code,message",
    [
        ("4000000000000002", "card_declined", "generic_decline", "Your card was declined."),
        (
            "4000000000009995",
            "card_declined",
            "insufficient_funds",
            "Your card has insufficient funds.",
        ),
        ("4000000000000069", "expired_card", "expired_card", "Your card has expired."),
        (
            "4000000000000127",
            "incorrect_cvc",
            "incorrect_cvc",
            "Your card's security code is incorrect.",
        ),
    ],
)
def test_declining_cards(stripe_client, make_customer, number, code, decline_code, message):
    pm = card(stripe_client, number)
    with pytest.raises(stripe.CardError) as caught:
        pay(stripe_client, pm.id)
    err = caught.value
    assert err.http_status == 402
    assert (err.code, err.json_body["error"]["decline_code"], err.user_message) == (
        code,
        decline_code,
        message,
    )
    pi = stripe_client.v1.payment_intents.retrieve(err.json_body["error"]["payment_intent"]["id"])
    assert pi.status == "requires_payment_method"
    assert pi.last_payment_error.code == code
    charge = stripe_client.v1.charges.retrieve(pi.latest_charge)
    assert charge.status == "failed" and charge.failure_code == code
    # Attaching runs a card check, so these cards cannot be saved either.
    with pytest.raises(stripe.CardError):
        stripe_client.v1.payment_methods.attach(pm.id, params={"customer": make_customer().id})


def test_invalid_card_details(stripe_client):
    with pytest.raises(stripe.CardError) as caught:
        card(stripe_client, "4242424242424241")
    assert caught.value.code == "incorrect_number"
    with pytest.raises(stripe.CardError) as caught:
        stripe_client.v1.payment_methods.create(
            params={
                "type": "card",
                "card": {"number": "4242424242424242", "exp_month": 13, "exp_year": 2034},
            }
        )
    assert caught.value.code == "invalid_expiry_month"


def test_attach_then_every_charge_fails_card(stripe_client, make_customer):
    customer = make_customer()
    pm = stripe_client.v1.payment_methods.attach(
        "pm_card_chargeCustomerFail", params={"customer": customer.id}
    )
    assert pm.id.startswith("pm_") and pm.customer == customer.id and pm.card.last4 == "0341"
    with pytest.raises(stripe.CardError) as caught:
        pay(stripe_client, pm.id, customer=customer.id, off_session=True)
    assert caught.value.code == "card_declined"


@pytest.mark.parametrize(
    "test_pm,outcome",
    [
        ("pm_card_visa", "succeeded"),
        ("pm_card_mastercard", "succeeded"),
        ("pm_card_amex", "succeeded"),
        ("pm_card_visa_chargeDeclined", "card_declined"),
        ("pm_card_visa_chargeDeclinedInsufficientFunds", "card_declined"),
        ("pm_card_chargeDeclinedExpiredCard", "expired_card"),
        ("pm_card_chargeCustomerFail", "card_declined"),
        ("pm_card_authenticationRequired", "requires_action"),
    ],
)
def test_test_payment_method_ids(stripe_client, test_pm, outcome):
    try:
        pi = pay(stripe_client, test_pm)
    except stripe.CardError as err:
        assert err.code == outcome
        return
    assert pi.status == outcome
    assert pi.payment_method.startswith("pm_") and pi.payment_method != test_pm


def test_test_ids_mint_fresh_payment_methods(stripe_client, make_customer):
    customer = make_customer()
    first = stripe_client.v1.payment_methods.attach(
        "pm_card_visa", params={"customer": customer.id}
    )
    second = stripe_client.v1.payment_methods.attach(
        "pm_card_visa", params={"customer": customer.id}
    )
    assert first.id != second.id
    listed = stripe_client.v1.payment_methods.list(params={"customer": customer.id, "type": "card"})
    assert {p.id for p in listed.data} == {first.id, second.id}
    via_customer = stripe_client.v1.customers.payment_methods.list(customer.id)
    assert len(via_customer.data) == 2


def test_detach_clears_default_payment_method(stripe_client, make_customer):
    customer = make_customer(payment_method="pm_card_visa")
    pm = stripe_client.v1.payment_methods.list(params={"customer": customer.id}).data[0]
    customer = stripe_client.v1.customers.update(
        customer.id, params={"invoice_settings": {"default_payment_method": pm.id}}
    )
    assert customer.invoice_settings.default_payment_method == pm.id
    detached = stripe_client.v1.payment_methods.detach(pm.id)
    assert detached.customer is None
    assert (
        stripe_client.v1.customers.retrieve(customer.id).invoice_settings.default_payment_method
        is None
    )
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.payment_methods.detach(pm.id)


def test_update_payment_method(stripe_client, make_customer):
    customer = make_customer()
    pm = stripe_client.v1.payment_methods.attach("pm_card_visa", params={"customer": customer.id})
    updated = stripe_client.v1.payment_methods.update(
        pm.id,
        params={
            "billing_details": {"name": "Jenny Rosen"},
            "card": {"exp_month": 3},
            "metadata": {"k": "v"},
        },
    )
    assert updated.billing_details.name == "Jenny Rosen"
    assert updated.card.exp_month == 3
    assert updated.metadata.to_dict() == {"k": "v"}


def test_setup_intent_saves_card(stripe_client, make_customer):
    customer = make_customer()
    si = stripe_client.v1.setup_intents.create(
        params={"customer": customer.id, "payment_method": "pm_card_visa", "confirm": True}
    )
    assert si.status == "succeeded" and si.usage == "off_session"
    assert si.client_secret.startswith(si.id + "_secret_")
    assert stripe_client.v1.payment_methods.retrieve(si.payment_method).customer == customer.id


def test_setup_intent_decline(stripe_client, make_customer):
    customer = make_customer()
    with pytest.raises(stripe.CardError) as caught:
        stripe_client.v1.setup_intents.create(
            params={
                "customer": customer.id,
                "payment_method": "pm_card_visa_chargeDeclined",
                "confirm": True,
            }
        )
    si = stripe_client.v1.setup_intents.retrieve(
        caught.value.json_body["error"]["setup_intent"]["id"]
    )
    assert si.status == "requires_payment_method"
    assert si.last_setup_error.decline_code == "generic_decline"


def test_setup_then_off_session_with_3155(stripe_client, make_customer):
    customer = make_customer()
    si = stripe_client.v1.setup_intents.create(
        params={
            "customer": customer.id,
            "confirm": True,
            "return_url": "https://portal.test/back",
            "payment_method": card(stripe_client, "4000002500003155").id,
        }
    )
    assert si.status == "requires_action"
    assert si.next_action.type == "redirect_to_url"
    assert si.next_action.redirect_to_url.return_url == "https://portal.test/back"
    done = sandbox_request(stripe_client, "post", f"/v1/sandbox/three_d_secure/{si.id}/complete")
    assert done["status"] == "succeeded"
    pi = pay(stripe_client, si.payment_method, customer=customer.id, off_session=True)
    assert pi.status == "succeeded"
    on_session = pay(stripe_client, si.payment_method, customer=customer.id)
    assert on_session.status == "requires_action"


def test_3155_off_session_without_setup_needs_authentication(stripe_client):
    with pytest.raises(stripe.CardError) as caught:
        pay(stripe_client, "pm_card_authenticationRequiredOnSetup", off_session=True)
    assert caught.value.code == "authentication_required"


def test_3184_always_authenticates(stripe_client, make_customer):
    customer = make_customer()
    si = stripe_client.v1.setup_intents.create(
        params={
            "customer": customer.id,
            "payment_method": card(stripe_client, "4000002760003184").id,
            "confirm": True,
        }
    )
    assert si.status == "requires_action" and si.next_action.type == "use_stripe_sdk"
    sandbox_request(stripe_client, "post", f"/v1/sandbox/three_d_secure/{si.id}/complete")
    with pytest.raises(stripe.CardError) as caught:
        pay(stripe_client, si.payment_method, customer=customer.id, off_session=True)
    assert caught.value.json_body["error"]["decline_code"] == "authentication_required"


def test_3ds_payment_to_success(stripe_client):
    pi = pay(stripe_client, "pm_card_authenticationRequired")
    assert pi.status == "requires_action"
    assert pi.next_action.type == "use_stripe_sdk"
    done = sandbox_request(stripe_client, "post", f"/v1/sandbox/three_d_secure/{pi.id}/complete")
    assert done["status"] == "succeeded"
    charge = stripe_client.v1.charges.retrieve(done["latest_charge"])
    assert charge.payment_method_details.card.three_d_secure.result == "authenticated"


def test_3ds_payment_to_failure_then_new_card(stripe_client, sandbox):
    pi = pay(stripe_client, "pm_card_authenticationRequired")
    browser = sandbox.client(key="pk_test_sandbox_browser")
    with pytest.raises(stripe.InvalidRequestError):
        sandbox_request(
            browser, "post", f"/v1/sandbox/three_d_secure/{pi.id}/fail", client_secret="wrong"
        )
    failed = sandbox_request(
        browser, "post", f"/v1/sandbox/three_d_secure/{pi.id}/fail", client_secret=pi.client_secret
    )
    assert failed["status"] == "requires_payment_method"
    assert failed["last_payment_error"]["code"] == "payment_intent_authentication_failure"
    retried = stripe_client.v1.payment_intents.confirm(
        pi.id, params={"payment_method": "pm_card_visa"}
    )
    assert retried.status == "succeeded"


def test_manual_capture_partial_and_cancel(stripe_client):
    pi = pay(stripe_client, "pm_card_visa", capture_method="manual")
    assert pi.status == "requires_capture" and pi.amount_capturable == 1000
    captured = stripe_client.v1.payment_intents.capture(pi.id, params={"amount_to_capture": 600})
    assert captured.status == "succeeded" and captured.amount_received == 600
    charge = stripe_client.v1.charges.retrieve(captured.latest_charge)
    assert (charge.amount_captured, charge.amount_refunded) == (600, 400)
    other = pay(stripe_client, "pm_card_visa", capture_method="manual")
    canceled = stripe_client.v1.payment_intents.cancel(
        other.id, params={"cancellation_reason": "abandoned"}
    )
    assert canceled.status == "canceled" and canceled.canceled_at
    with pytest.raises(stripe.InvalidRequestError) as caught:
        stripe_client.v1.payment_intents.cancel(captured.id)
    assert caught.value.code == "payment_intent_unexpected_state"


def test_intent_confirmed_later(stripe_client, make_customer):
    customer = make_customer()
    pi = stripe_client.v1.payment_intents.create(
        params={"amount": 2000, "currency": "eur", "customer": customer.id}
    )
    assert pi.status == "requires_payment_method"
    updated = stripe_client.v1.payment_intents.update(
        pi.id, params={"payment_method": "pm_card_visa"}
    )
    assert updated.status == "requires_confirmation"
    done = stripe_client.v1.payment_intents.confirm(
        pi.id, params={"setup_future_usage": "off_session"}
    )
    assert done.status == "succeeded"
    assert stripe_client.v1.payment_methods.retrieve(done.payment_method).customer == customer.id


def test_fee_and_net_on_balance_transaction(stripe_client, make_payment):
    pi = make_payment(amount=1000, expand=["latest_charge.balance_transaction"])
    txn = pi.latest_charge.balance_transaction
    assert (txn.amount, txn.fee, txn.net) == (1000, 59, 941)
    assert txn.fee_details[0].type == "stripe_fee"
    yen = make_payment(amount=1000, currency="jpy", expand=["latest_charge.balance_transaction"])
    assert yen.latest_charge.balance_transaction.fee == 29


def test_partial_and_several_refunds(stripe_client, make_payment):
    pi = make_payment(amount=1000)
    first = stripe_client.v1.refunds.create(
        params={"payment_intent": pi.id, "amount": 300, "reason": "requested_by_customer"}
    )
    second = stripe_client.v1.refunds.create(params={"charge": pi.latest_charge, "amount": 200})
    assert first.status == second.status == "succeeded"
    assert first.reason == "requested_by_customer"
    charge = stripe_client.v1.charges.retrieve(pi.latest_charge)
    assert (charge.amount_refunded, charge.refunded) == (500, False)
    assert {r.id for r in charge.refunds.data} == {first.id, second.id}
    txn = stripe_client.v1.balance_transactions.retrieve(first.balance_transaction)
    assert (txn.amount, txn.type) == (-300, "refund")
    with pytest.raises(stripe.InvalidRequestError) as caught:
        stripe_client.v1.refunds.create(params={"charge": pi.latest_charge, "amount": 501})
    assert caught.value.http_status == 400
    assert caught.value.user_message == (
        "Refund amount ($5.01) is greater than unrefunded amount on charge ($5.00)"
    )
    rest = stripe_client.v1.refunds.create(params={"charge": pi.latest_charge})
    assert rest.amount == 500
    assert stripe_client.v1.charges.retrieve(pi.latest_charge).refunded is True
    with pytest.raises(stripe.InvalidRequestError) as caught:
        stripe_client.v1.refunds.create(params={"charge": pi.latest_charge})
    assert caught.value.code == "charge_already_refunded"
    assert len(stripe_client.v1.refunds.list(params={"charge": pi.latest_charge}).data) == 3
    updated = stripe_client.v1.refunds.update(rest.id, params={"metadata": {"ticket": "7"}})
    assert updated.metadata.to_dict() == {"ticket": "7"}


@pytest.mark.parametrize(
    "number,outcome",
    [
        ("4242424242424242", "succeeded"),
        ("5555555555554444", "succeeded"),
        ("4000000000000341", "succeeded"),
        ("4000000000000002", "card_declined"),
        ("4000000000009995", "card_declined"),
        ("4000000000000069", "expired_card"),
        ("4000000000000127", "incorrect_cvc"),
        ("4000002500003155", "requires_action"),
        ("4000002760003184", "requires_action"),
    ],
)
def test_test_cards_on_setup(stripe_client, make_customer, number, outcome):
    customer = make_customer()
    pm = card(stripe_client, number)
    try:
        si = stripe_client.v1.setup_intents.create(
            params={"customer": customer.id, "payment_method": pm.id, "confirm": True}
        )
    except stripe.CardError as err:
        assert err.code == outcome
        assert stripe_client.v1.payment_methods.retrieve(pm.id).customer is None
        return
    assert si.status == outcome
    attached = stripe_client.v1.payment_methods.retrieve(pm.id).customer
    assert attached == (customer.id if outcome == "succeeded" else None)


def test_setup_intent_cancel_and_3ds_failure(stripe_client, make_customer):
    customer = make_customer()
    si = stripe_client.v1.setup_intents.create(
        params={
            "customer": customer.id,
            "payment_method": "pm_card_authenticationRequired",
            "confirm": True,
        }
    )
    failed = sandbox_request(stripe_client, "post", f"/v1/sandbox/three_d_secure/{si.id}/fail")
    assert failed["status"] == "requires_payment_method"
    assert failed["last_setup_error"]["code"] == "setup_intent_authentication_failure"
    canceled = stripe_client.v1.setup_intents.cancel(
        si.id, params={"cancellation_reason": "abandoned"}
    )
    assert canceled.status == "canceled"
    types = [e.type for e in stripe_client.v1.events.list(params={"type": "setup_intent.*"}).data]
    assert types == [
        "setup_intent.canceled",
        "setup_intent.setup_failed",
        "setup_intent.requires_action",
        "setup_intent.created",
    ]
    listed = stripe_client.v1.setup_intents.list(params={"customer": customer.id})
    assert [s.id for s in listed.data] == [si.id]


def test_payment_events(stripe_client, make_payment):
    make_payment(amount=1500)
    with pytest.raises(stripe.CardError):
        make_payment(payment_method="pm_card_visa_chargeDeclined")
    types = [e.type for e in stripe_client.v1.events.list().data]
    assert types == [
        "payment_intent.payment_failed",
        "charge.failed",
        "payment_intent.created",
        "payment_intent.succeeded",
        "charge.succeeded",
        "payment_intent.created",
    ]


def test_payment_method_of_another_customer_is_refused(stripe_client, make_customer):
    owner, other = make_customer(), make_customer()
    pm = stripe_client.v1.payment_methods.attach("pm_card_visa", params={"customer": owner.id})
    with pytest.raises(stripe.InvalidRequestError) as caught:
        pay(stripe_client, pm.id, customer=other.id)
    assert caught.value.param == "payment_method"
    with pytest.raises(stripe.InvalidRequestError) as caught:
        stripe_client.v1.payment_intents.create(
            params={"amount": 1000, "currency": "usd", "confirm": True}
        )
    assert "missing a payment method" in caught.value.user_message


def test_refund_of_card_5126_starts_succeeded_then_fails(stripe_client, make_payment):
    """Stripe's test card 4000000000005126: the refund succeeds, then fails asynchronously.

    Follows https://docs.stripe.com/testing#refunds (and docs.stripe.com/refunds#failed-refunds:
    the amount returns to the balance and a failure_reason is given).
    """
    pi = make_payment(amount=1000, payment_method="pm_card_refundFail")
    refund = stripe_client.v1.refunds.create(params={"charge": pi.latest_charge, "amount": 400})
    assert refund.status == "succeeded"
    later = stripe_client.v1.refunds.retrieve(refund.id)
    assert later.status == "failed"
    assert later.failure_reason == "expired_or_canceled_card"
    txn = stripe_client.v1.balance_transactions.retrieve(later.failure_balance_transaction)
    assert (txn.amount, txn.type) == (400, "refund_failure")
    charge = stripe_client.v1.charges.retrieve(pi.latest_charge)
    assert (charge.amount_refunded, charge.refunded) == (0, False)
    types = [event.type for event in stripe_client.v1.events.list(params={"limit": 20}).data]
    assert "refund.failed" in types and "charge.refund.updated" in types
    # A card that takes refunds keeps them.
    ok = make_payment(amount=1000)
    kept = stripe_client.v1.refunds.create(params={"charge": ok.latest_charge, "amount": 400})
    assert stripe_client.v1.refunds.retrieve(kept.id).status == "succeeded"
