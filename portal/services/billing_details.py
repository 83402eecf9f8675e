"""The account's billing details and tax ids, saved to its Stripe customer and mirrored."""
from __future__ import annotations

from argon2.exceptions import InvalidHashError, VerificationError
from babel import Locale
from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from portal.extensions import db
from portal.models import Account, TaxId, User
from portal.models.account import find_user_by_email
from portal.services import sync
from portal.services.accounts import password_hasher
from portal.services.audit import record_audit
from portal.services.customers import ensure_stripe_customer
from portal.services.refusals import BillingRefused
from portal.services.stripe_client import InvalidRequestError, request_id, stripe_client
from portal.services.tax_ids import TAX_ID_TYPES, normalise_tax_id

EMAIL_CHANGE_SALT = "email-change"
EMAIL_CHANGE_MAX_AGE_S = 24 * 3600
ADDRESS_FIELDS = ("line1", "line2", "postal_code", "city", "state", "country")


class BillingDetailsRefused(BillingRefused):
    """Raised when billing details, a tax id or an email change cannot be saved."""


def country_choices() -> list[tuple[str, str]]:
    """Return (ISO code, English name) for every country, sorted by name."""
    territories = Locale("en").territories
    return sorted(((code, name) for code, name in territories.items()
                   if len(code) == 2 and code.isalpha() and code not in ("ZZ", "EU", "EZ",
                                                                          "UN", "QO", "XA",
                                                                          "XB")),
                  key=lambda item: item[1])


def account_tax_ids(account: Account) -> list[TaxId]:
    """Return the tax ids mirrored for the account, oldest first."""
    return list(db.session.scalars(db.select(TaxId).where(TaxId.account_id == account.id)
                                   .order_by(TaxId.stripe_created, TaxId.id)))


def save_billing_details(account: Account, *, name: str, legal_name: str | None,
                         billing_email: str | None, address: dict[str, str | None],
                         actor: User | None = None, ip: str | None = None) -> Account:
    """Save the account name here and legal name, billing email and address at Stripe."""
    customer_id = ensure_stripe_customer(account)
    cleaned = {key: (address.get(key) or "").strip() for key in ADDRESS_FIELDS}
    # Without a billing email, Stripe keeps reaching the account's first member.
    owner = account.users[0].email if account.users else ""
    try:
        customer = stripe_client().v1.customers.update(customer_id, params={
            "name": (legal_name or "").strip() or name.strip(),
            "email": (billing_email or "").strip().lower() or owner,
            "address": cleaned,
        })
    except InvalidRequestError as exc:
        raise BillingDetailsRefused(exc.user_message or "Stripe refused those details.") from exc
    account = sync.customer(customer) or account
    previous_name = account.name
    account.name = name.strip()
    record_audit(actor, "billing_details.changed", "account", account.id, ip=ip,
                 account_id=account.id, stripe_request_id=request_id(customer),
                 details={"name": account.name, "previous_name": previous_name,
                          "legal_name": customer.name, "billing_email": customer.email,
                          "country": cleaned.get("country") or None})
    db.session.commit()
    return account


def add_tax_id(account: Account, kind: str, value: str, *, actor: User | None = None,
               ip: str | None = None) -> TaxId:
    """Add a tax id to the account's Stripe customer after checking its format."""
    normalised = normalise_tax_id(kind, value)
    if normalised is None:
        label = TAX_ID_TYPES.get(kind, ("tax id",))[0]
        raise BillingDetailsRefused(f"That does not look like a valid {label} number.")
    customer_id = ensure_stripe_customer(account)
    try:
        created = stripe_client().v1.customers.tax_ids.create(
            customer_id, params={"type": kind, "value": normalised})
    except InvalidRequestError as exc:
        raise BillingDetailsRefused(exc.user_message or "Stripe refused that tax id.") from exc
    row = sync.tax_id(created)
    record_audit(actor, "tax_id.added", "tax_id", created.id, ip=ip, account_id=account.id,
                 stripe_request_id=request_id(created),
                 details={"type": kind, "value": normalised})
    db.session.commit()
    return row


def remove_tax_id(account: Account, stripe_tax_id: str, *, actor: User | None = None,
                  ip: str | None = None) -> None:
    """Remove one of the account's tax ids at Stripe and from the mirror."""
    row = db.session.scalar(db.select(TaxId).where(TaxId.stripe_tax_id == stripe_tax_id,
                                                   TaxId.account_id == account.id))
    if row is None or not account.stripe_customer_id:
        raise BillingDetailsRefused("That tax id is not on this account.")
    deleted = stripe_client().v1.customers.tax_ids.delete(account.stripe_customer_id,
                                                          stripe_tax_id)
    sync.tax_id(deleted)
    record_audit(actor, "tax_id.removed", "tax_id", stripe_tax_id, ip=ip, account_id=account.id,
                 stripe_request_id=request_id(deleted),
                 details={"type": row.type, "value": row.value})
    db.session.commit()


def set_reminder_emails(account: Account, enabled: bool, *, actor: User | None = None,
                        ip: str | None = None) -> None:
    """Turn trial and renewal reminders on or off (receipts and failures always go)."""
    if account.reminder_emails != enabled:
        record_audit(actor, "billing_details.reminders_changed", "account", account.id, ip=ip,
                     account_id=account.id, details={"reminder_emails": enabled})
    account.reminder_emails = enabled
    db.session.commit()


def _password_matches(user: User, password: str) -> bool:
    """Return True when `password` is the user's current password."""
    try:
        return password_hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _email_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=EMAIL_CHANGE_SALT)


def email_change_token(user: User, new_email: str, password: str) -> str:
    """Return a signed link token for moving the user to `new_email`, after checking both."""
    new_email = new_email.strip().lower()
    if not _password_matches(user, password):
        raise BillingDetailsRefused("Your current password is not right.")
    if find_user_by_email(new_email) is not None:
        raise BillingDetailsRefused("That email address is already in use.")
    # The old email is in the token: once changed, the same link cannot be used again.
    return _email_serializer().dumps({"user": user.id, "from": user.email, "to": new_email})


def confirm_email_change(token: str, user: User) -> User:
    """Apply the user's email change a confirmation link names; refuse any other link."""
    try:
        data = _email_serializer().loads(token, max_age=EMAIL_CHANGE_MAX_AGE_S)
    except SignatureExpired as exc:
        raise BillingDetailsRefused("That confirmation link has expired.") from exc
    except BadSignature as exc:
        raise BillingDetailsRefused("That confirmation link is not valid.") from exc
    if not isinstance(data, dict) or data.get("user") != user.id:
        raise BillingDetailsRefused("That confirmation link belongs to someone else.")
    if user.email != data.get("from"):
        raise BillingDetailsRefused("That confirmation link was already used.")
    if find_user_by_email(data["to"]) is not None:
        raise BillingDetailsRefused("That email address is already in use.")
    user.email = data["to"]
    db.session.commit()
    return user
