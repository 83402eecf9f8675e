"""Charges: the record of one payment attempt, made by PaymentIntents, and its capture."""

from __future__ import annotations

from ..core.context import Ctx
from ..core.objects import insert, new_object, save
from ..core.store import Store
from . import balance

SUCCESS_OUTCOME = {
    "advice_code": None,
    "network_advice_code": None,
    "network_decline_code": None,
    "network_status": "approved_by_network",
    "reason": None,
    "risk_level": "normal",
    "risk_score": 32,
    "seller_message": "Payment complete.",
    "type": "authorized",
}


def _card_details(
    pm: dict, amount: int, three_d_secure: dict | None, cvc_check: str | None
) -> dict:
    """Return payment_method_details for a card charge."""
    card = pm["card"]
    return {
        "card": {
            "amount_authorized": amount,
            "authorization_code": None,
            "brand": card["brand"],
            "checks": {**card["checks"], "cvc_check": cvc_check},
            "country": card["country"],
            "exp_month": card["exp_month"],
            "exp_year": card["exp_year"],
            "extended_authorization": {"status": "disabled"},
            "fingerprint": card["fingerprint"],
            "funding": card["funding"],
            "incremental_authorization": {"status": "unavailable"},
            "installments": None,
            "last4": card["last4"],
            "mandate": None,
            "multicapture": {"status": "unavailable"},
            "network": card["brand"],
            "network_token": {"used": False},
            "network_transaction_id": None,
            "overcapture": {"maximum_amount_capturable": amount, "status": "unavailable"},
            "regulated_status": card.get("regulated_status"),
            "three_d_secure": three_d_secure,
            "transaction_link_id": None,
            "wallet": None,
        },
        "type": "card",
    }


def create_charge(
    ctx: Ctx,
    pi: dict,
    pm: dict,
    *,
    decline: dict | None = None,
    capture: bool = True,
    three_d_secure: dict | None = None,
) -> dict:
    """Store the charge of one payment attempt: succeeded (captured or not) or failed."""
    customer = pi.get("customer")
    charge = new_object(ctx, "ch", "charge", customer=customer)
    failed = decline is not None
    charge.update(
        {
            "amount": pi["amount"],
            "amount_captured": 0,
            "amount_refunded": 0,
            "application": None,
            "application_fee": None,
            "application_fee_amount": None,
            "balance_transaction": None,
            "billing_details": pm["billing_details"],
            "calculated_statement_descriptor": "SANDBOX",
            "captured": False,
            "currency": pi["currency"],
            "customer": customer,
            "description": pi.get("description"),
            "disputed": False,
            "failure_balance_transaction": None,
            "failure_code": decline["code"] if failed else None,
            "failure_message": decline["message"] if failed else None,
            "fraud_details": {},
            "metadata": dict(pi.get("metadata") or {}),
            "on_behalf_of": None,
            "outcome": SUCCESS_OUTCOME
            if not failed
            else {
                "advice_code": "try_again_later"
                if decline["decline_code"] == "generic_decline"
                else None,
                "network_advice_code": None,
                "network_decline_code": None,
                "network_status": "declined_by_network",
                "reason": decline["decline_code"],
                "risk_level": "normal",
                "risk_score": 32,
                "seller_message": "The bank did not return any further details with this decline.",
                "type": "issuer_declined",
            },
            "paid": not failed,
            "payment_intent": pi["id"],
            "payment_method": pm["id"],
            "payment_method_details": _card_details(
                pm,
                pi["amount"],
                three_d_secure,
                "fail" if failed and decline["code"] == "incorrect_cvc" else "pass",
            ),
            "receipt_email": pi.get("receipt_email"),
            "receipt_number": None,
            "receipt_url": None,
            "refunded": False,
            "review": None,
            "shipping": pi.get("shipping"),
            "source": None,
            "source_transfer": None,
            "statement_descriptor": pi.get("statement_descriptor"),
            "statement_descriptor_suffix": pi.get("statement_descriptor_suffix"),
            "status": "failed" if failed else "succeeded",
            "transfer_data": None,
            "transfer_group": None,
        }
    )
    insert(ctx, charge, customer=customer)
    if failed:
        ctx.emit("charge.failed", charge, customer=customer)
        return charge
    if capture:
        capture_charge(ctx, charge, pi["amount"], emit_captured=False)
    ctx.emit("charge.succeeded", charge, customer=customer)
    return charge


def capture_charge(ctx: Ctx, charge: dict, amount: int, *, emit_captured: bool = True) -> dict:
    """Capture ``amount`` of an authorised charge; the rest of the authorisation is released."""
    before = dict(charge)
    released = charge["amount"] - amount
    charge["captured"] = True
    charge["amount_captured"] = amount
    if released:
        charge["amount_refunded"] = released
        charge["refunded"] = amount == 0
    txn = balance.record(
        ctx,
        amount=amount,
        currency=charge["currency"],
        source=charge["id"],
        kind="charge",
        description=charge.get("description"),
        customer=charge.get("customer"),
    )
    charge["balance_transaction"] = txn["id"]
    save(ctx, charge)
    if emit_captured:
        ctx.emit("charge.captured", charge, before=before)
    return charge


def release_authorisation(ctx: Ctx, charge: dict) -> dict:
    """Release an uncaptured charge's whole authorisation (its intent was canceled)."""
    before = dict(charge)
    charge.update(amount_refunded=charge["amount"], refunded=True)
    save(ctx, charge)
    ctx.emit("charge.refunded", charge, before=before)
    return charge


def refunds_of(store: Store, charge_id: str) -> list[dict]:
    """Return a charge's refunds, newest first."""
    return store.select("refund", "json_extract(body, '$.charge') = ?", (charge_id,))
