"""Card numbers and Stripe's documented test cards: brand, funding, checks and behaviour.

Behaviour kinds, as Stripe documents them for test mode:

- ``ok``: every payment succeeds.
- ``decline``: attaching, setting up and charging fail with the card's decline
  (4000000000000002 generic, ...9995 insufficient funds, ...0069 expired, ...0127 CVC).
- ``charge_fail``: attaches and sets up fine, every charge is declined (4000000000000341).
- ``auth_setup``: needs 3-D Secure on setup and on-session payments; off-session payments
  succeed once the card was set up (4000002500003155).
- ``auth_always``: needs 3-D Secure on every payment, off-session ones are declined with
  ``authentication_required`` (4000002760003184).
- ``refund_fail``: payments succeed; a refund starts as succeeded and fails later
  (4000000000005126, https://docs.stripe.com/testing#refunds).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from ..core.errors import StripeError


@dataclass(frozen=True)
class Decline:
    """How a declined card answers: error code, decline code and message."""

    code: str
    decline_code: str
    message: str


@dataclass(frozen=True)
class Behaviour:
    """What a test card does when attached, set up or charged."""

    kind: str = "ok"
    decline: Decline | None = None
    funding: str = "credit"
    country: str = "US"


GENERIC = Decline("card_declined", "generic_decline", "Your card was declined.")
AUTH_REQUIRED = Decline(
    "authentication_required",
    "authentication_required",
    "Your card was declined. This transaction requires authentication.",
)
BEHAVIOURS: dict[str, Behaviour] = {
    "4000000000000002": Behaviour("decline", GENERIC),
    "4000000000009995": Behaviour(
        "decline",
        Decline("card_declined", "insufficient_funds", "Your card has insufficient funds."),
    ),
    "4000000000009987": Behaviour(
        "decline", Decline("card_declined", "lost_card", "Your card was declined.")
    ),
    "4000000000009979": Behaviour(
        "decline", Decline("card_declined", "stolen_card", "Your card was declined.")
    ),
    "4000000000000069": Behaviour(
        "decline", Decline("expired_card", "expired_card", "Your card has expired.")
    ),
    "4000000000000127": Behaviour(
        "decline",
        Decline("incorrect_cvc", "incorrect_cvc", "Your card's security code is incorrect."),
    ),
    "4000000000000119": Behaviour(
        "decline",
        Decline(
            "processing_error",
            "processing_error",
            "An error occurred while processing your card. Try again in a little bit.",
        ),
    ),
    "4000000000000341": Behaviour("charge_fail", GENERIC),
    "4000002500003155": Behaviour("auth_setup"),
    "4000002760003184": Behaviour("auth_always"),
    "4000000000003220": Behaviour("auth_always"),
    "4000000000003063": Behaviour("auth_always"),
    "4000000000005126": Behaviour("refund_fail"),
    "4000056655665556": Behaviour(funding="debit"),
    "5200828282828210": Behaviour(funding="debit"),
    "4000000760000002": Behaviour(country="BR"),
    "4000001240000000": Behaviour(country="CA"),
    "4000002760000016": Behaviour(country="DE"),
    "4000008260000000": Behaviour(country="GB"),
}

# Stripe's test PaymentMethod ids and the card number each one stands for.
TEST_PAYMENT_METHODS: dict[str, str] = {
    "pm_card_visa": "4242424242424242",
    "pm_card_visa_debit": "4000056655665556",
    "pm_card_mastercard": "5555555555554444",
    "pm_card_mastercard_debit": "5200828282828210",
    "pm_card_amex": "378282246310005",
    "pm_card_discover": "6011111111111117",
    "pm_card_jcb": "3566002020360505",
    "pm_card_unionpay": "6200000000000005",
    "pm_card_us": "4242424242424242",
    "pm_card_gb": "4000008260000000",
    "pm_card_de": "4000002760000016",
    "pm_card_visa_chargeDeclined": "4000000000000002",
    "pm_card_visa_chargeDeclinedInsufficientFunds": "4000000000009995",
    "pm_card_visa_chargeDeclinedLostCard": "4000000000009987",
    "pm_card_visa_chargeDeclinedStolenCard": "4000000000009979",
    "pm_card_chargeDeclinedExpiredCard": "4000000000000069",
    "pm_card_chargeDeclinedIncorrectCvc": "4000000000000127",
    "pm_card_chargeDeclinedProcessingError": "4000000000000119",
    "pm_card_chargeCustomerFail": "4000000000000341",
    "pm_card_authenticationRequiredOnSetup": "4000002500003155",
    "pm_card_authenticationRequired": "4000002760003184",
    "pm_card_threeDSecure2Required": "4000000000003220",
    "pm_card_refundFail": "4000000000005126",
}

_FINGERPRINT_KEY = b"sandbox-card-fingerprint"


def brand_of(number: str) -> str:
    """Return Stripe's brand name for a card number's prefix."""
    if number.startswith("4"):
        return "visa"
    if number[:2] in {"34", "37"}:
        return "amex"
    if number[:2] in {"51", "52", "53", "54", "55"} or 2221 <= int(number[:4] or 0) <= 2720:
        return "mastercard"
    if number.startswith(("6011", "65", "644", "645", "646", "647", "648", "649")):
        return "discover"
    if number.startswith("35"):
        return "jcb"
    if number.startswith(("36", "30", "38")):
        return "diners"
    if number.startswith("62"):
        return "unionpay"
    return "unknown"


def luhn_ok(number: str) -> bool:
    """Check a card number's Luhn checksum."""
    total = 0
    for i, digit in enumerate(int(d) for d in reversed(number)):
        if i % 2:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def fingerprint(number: str) -> str:
    """Return a stable fingerprint: the same number always yields the same value."""
    digest = hmac.new(_FINGERPRINT_KEY, number.encode(), hashlib.sha256).hexdigest()
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    value = int(digest, 16)
    return "".join(alphabet[(value >> (6 * i)) % 62] for i in range(16))


def card_error(code: str, message: str, param: str) -> StripeError:
    """Build the 402 card_error raised for invalid card details."""
    return StripeError(message, status=402, type="card_error", code=code, param=param)


def check_card(
    number: str,
    exp_month: int | None,
    exp_year: int | None,
    cvc: str | None,
    today: tuple[int, int],
) -> str:
    """Validate raw card details like Stripe.js would and return the normalised number."""
    digits = (number or "").replace(" ", "").replace("-", "")
    if not digits.isdigit() or not 12 <= len(digits) <= 19 or not luhn_ok(digits):
        raise card_error("incorrect_number", "Your card number is incorrect.", "card[number]")
    if exp_month is None or not 1 <= exp_month <= 12:
        raise card_error(
            "invalid_expiry_month", "Your card's expiration month is invalid.", "card[exp_month]"
        )
    year = exp_year + 2000 if exp_year is not None and exp_year < 100 else exp_year
    if year is None or (year, exp_month) < today or year > today[0] + 50:
        raise card_error(
            "invalid_expiry_year", "Your card's expiration year is invalid.", "card[exp_year]"
        )
    if cvc is not None and not (cvc.isdigit() and len(cvc) in (3, 4)):
        raise card_error("invalid_cvc", "Your card's security code is invalid.", "card[cvc]")
    return digits


def behaviour_of(number: str) -> Behaviour:
    """Return the documented test behaviour of a card number (``ok`` for unknown numbers)."""
    return BEHAVIOURS.get(number, Behaviour())
