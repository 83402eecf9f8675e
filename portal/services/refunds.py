"""Refunds with guardrails: never more than what is left, approval above a threshold, once.

Each refund is first written as the portal's own RefundRequest (committed before Stripe is
called), and every Stripe call for it carries the key `refund-<id>`, so a double submit or a
retry refunds once. Refunds of one charge are serialized on the charge row: PostgreSQL locks
it with SELECT ... FOR UPDATE; on SQLite a no-op UPDATE takes the single writer's lock first
(as BEGIN IMMEDIATE would), so the amount left is read and taken under the same lock.
"""
from __future__ import annotations

from collections.abc import Mapping

from flask import current_app

from portal.extensions import db
from portal.models import Charge, Invoice, Refund, RefundRequest, Role, User
from portal.models.refund_request import UNSENT
from portal.services import sync
from portal.services.audit import record_audit
from portal.services.money import format_money
from portal.services.notices import refund_notice, send_refund_succeeded
from portal.services.stripe_client import (
    APIConnectionError,
    RateLimitError,
    StripeError,
    outcome_unknown,
    request_id,
    stripe_client,
)

# Stripe refund statuses that hold money back from the charge.
LIVE_STRIPE_STATUSES = ("pending", "requires_action", "succeeded")
# How a Stripe refund status shows on the portal's record.
PORTAL_STATUS = {"requires_action": "pending"}


class RefundRefused(Exception):
    """A refund that may not go ahead; the message says why, for the admin."""


class RefundForbidden(RefundRefused):
    """A refund action this admin may not take (approving their own request)."""


def approval_threshold(currency: str, config: Mapping | None = None) -> int | None:
    """Return the amount above which a refund in `currency` needs a second admin, or None."""
    setting = (config or current_app.config).get("REFUND_APPROVAL_THRESHOLD")
    if isinstance(setting, Mapping):
        setting = setting.get(currency.lower())
    return None if setting is None else int(setting)


def needs_approval(amount: int, currency: str) -> bool:
    """Return True when a refund of this size must be approved by a second admin."""
    threshold = approval_threshold(currency)
    return threshold is not None and amount > threshold


def refundable_amount(charge: Charge) -> int:
    """Return what is left to refund: captured minus refunded, pending or not yet sent.

    Both sums are read by one statement, so they come from one snapshot: a refund whose
    record turns from "sending" to sent in the same commit that mirrors it is counted once
    in one of them, never missed by reading them at two moments (PostgreSQL's READ COMMITTED).
    """
    mirrored_sum = db.select(db.func.coalesce(db.func.sum(Refund.amount), 0)).where(
        Refund.stripe_charge_id == charge.stripe_charge_id,
        Refund.status.in_(LIVE_STRIPE_STATUSES)).scalar_subquery()
    unsent_sum = db.select(db.func.coalesce(db.func.sum(RefundRequest.amount), 0)).where(
        RefundRequest.charge_id == charge.id, RefundRequest.status.in_(UNSENT)).scalar_subquery()
    mirrored, unsent = db.session.execute(db.select(mirrored_sum, unsent_sum)).one()
    return max(0, charge.amount_captured - max(charge.amount_refunded, mirrored) - unsent)


def customer_notice(charge: Charge, amount: int) -> str:
    """Return what the customer is told about this refund (the mail's text)."""
    return refund_notice(charge, amount)


def refundable_charges(account_id: int) -> list[tuple[Charge, Invoice | None, int]]:
    """Return the account's succeeded charges, newest first, with invoice paid and amount left."""
    rows = db.session.execute(
        db.select(Charge, Invoice)
        .outerjoin(Invoice, Invoice.stripe_invoice_id == Charge.stripe_invoice_id)
        .where(Charge.account_id == account_id, Charge.status == "succeeded")
        .order_by(Charge.stripe_created.desc(), Charge.id.desc()))
    return [(charge, invoice, refundable_amount(charge)) for charge, invoice in rows]


def account_refunds(account_id: int) -> list[RefundRequest]:
    """Return the portal's refund records of an account, newest first."""
    return list(db.session.scalars(
        db.select(RefundRequest).where(RefundRequest.account_id == account_id)
        .order_by(RefundRequest.id.desc())))


def _lock_charge(charge_id: int) -> Charge:
    """Return the charge locked against other refunds of it until this transaction ends."""
    if db.engine.dialect.name == "sqlite":
        db.session.execute(db.update(Charge).where(Charge.id == charge_id)
                           .values(amount_refunded=Charge.amount_refunded))
    charge = db.session.scalar(
        db.select(Charge).where(Charge.id == charge_id).with_for_update()
        .execution_options(populate_existing=True))
    if charge is None:
        raise RefundRefused("That payment does not exist.")
    return charge


def _check_refundable(charge: Charge, amount: int) -> None:
    """Refuse an amount the charge cannot give back."""
    if charge.status != "succeeded" or charge.amount_captured <= 0:
        raise RefundRefused("Only a succeeded payment can be refunded.")
    left = refundable_amount(charge)
    if amount > left:
        raise RefundRefused(
            f"{format_money(amount, charge.currency)} is more than the "
            f"{format_money(left, charge.currency)} left to refund on this payment.")


def request_refund(admin: User, charge_id: int, amount: int, reason: str, note: str,
                   form_token: str, ip: str | None = None,
                   retry_of: RefundRequest | None = None) -> RefundRequest:
    """Record a refund under the charge's lock, then send it unless it needs approval."""
    existing = db.session.scalar(
        db.select(RefundRequest).where(RefundRequest.form_token == form_token))
    if existing is None:
        db.session.commit()  # start a fresh transaction, so the lock is its first write
        charge = _lock_charge(charge_id)
        existing = db.session.scalar(
            db.select(RefundRequest).where(RefundRequest.form_token == form_token))
    if existing is not None:
        # The same confirmation submitted again: finish that refund, never a second one.
        db.session.rollback()
        return send_refund(existing, admin, ip) if existing.status == "sending" else existing
    if amount <= 0:
        db.session.rollback()
        raise RefundRefused("The refund amount must be more than zero.")
    try:
        _check_refundable(charge, amount)
    except RefundRefused:
        db.session.rollback()
        raise
    waits = needs_approval(amount, charge.currency)
    record = RefundRequest(
        charge_id=charge.id, account_id=charge.account_id, amount=amount,
        currency=charge.currency, reason=reason, note=note, form_token=form_token,
        status="awaiting_approval" if waits else "sending", requested_by_id=admin.id,
        retry_of_id=retry_of.id if retry_of else None,
    )
    db.session.add(record)
    db.session.flush()
    record_audit(admin, "refund.requested", "refund", record.id, amount=amount,
                 currency=charge.currency, ip=ip, account_id=charge.account_id,
                 details={"charge": charge.stripe_charge_id, "reason": reason, "note": note,
                          "needs_approval": waits,
                          "retry_of": retry_of.id if retry_of else None})
    db.session.commit()
    return record if waits else send_refund(record, admin, ip)


def approve_refund(approver: User, refund_id: int, ip: str | None = None) -> RefundRequest:
    """Approve another admin's refund request and send it."""
    record = db.session.get(RefundRequest, refund_id)
    if record is None:
        raise RefundRefused("That refund does not exist.")
    if not approver.has_role(Role.ADMIN):
        raise RefundForbidden("Only an admin can approve a refund.")
    if record.requested_by_id == approver.id:
        raise RefundForbidden("You asked for this refund: another admin has to approve it.")
    db.session.commit()
    _lock_charge(record.charge_id)
    db.session.refresh(record)
    if record.status != "awaiting_approval":
        db.session.rollback()
        raise RefundRefused("This refund is not waiting for approval any more.")
    record.approved_by_id = approver.id
    record.transition("sending")
    record_audit(approver, "refund.approved", "refund", record.id, amount=record.amount,
                 currency=record.currency, account_id=record.account_id, ip=ip,
                 details={"requested_by": record.requested_by_id})
    db.session.commit()
    return send_refund(record, approver, ip)


def send_refund(record: RefundRequest, actor: User, ip: str | None = None) -> RefundRequest:
    """Create the refund at Stripe under the record's key and keep Stripe's answer."""
    charge = record.charge
    try:
        refund = stripe_client().v1.refunds.create(
            params={"charge": charge.stripe_charge_id, "amount": record.amount,
                    "reason": record.reason,
                    "metadata": {"portal_refund_id": str(record.id)}},
            options={"idempotency_key": record.idempotency_key},
        )
    except APIConnectionError as exc:
        # The outcome is unknown: the record stays "sending" and a retry reuses its key.
        raise RefundRefused(
            "Stripe did not answer. Send the refund again: it is sent under the same key, "
            "so it cannot be refunded twice.") from exc
    except StripeError as exc:
        if outcome_unknown(exc) or isinstance(exc, RateLimitError):
            # A 500 may have refunded, a 429 did nothing: either way the record stays
            # "sending" and sending it again replays under the same key.
            db.session.rollback()
            raise RefundRefused(
                "Stripe could not take the refund just now. Send it again: it is sent under "
                "the same key, so it cannot be refunded twice.") from exc
        db.session.rollback()
        record.transition("failed", exc.user_message or str(exc))
        record_audit(actor, "refund.failed", "refund", record.id, amount=record.amount,
                     currency=record.currency, account_id=record.account_id, ip=ip,
                     stripe_request_id=exc.request_id,
                     details={"error": exc.code, "message": exc.user_message})
        db.session.commit()
        return record
    row = sync.refund(refund)
    record.stripe_refund_id = refund.id
    record.stripe_request_id = request_id(refund)
    record.transition(PORTAL_STATUS.get(row.status, row.status))
    record_audit(actor, "refund.sent", "refund", record.id, amount=record.amount,
                 currency=record.currency, account_id=record.account_id, ip=ip,
                 stripe_request_id=record.stripe_request_id,
                 details={"stripe_refund": refund.id, "status": refund.status})
    send_refund_succeeded(row)
    db.session.commit()
    return record


def retry_refund(admin: User, refund_id: int, form_token: str,
                 ip: str | None = None) -> RefundRequest:
    """Send a stuck refund again under its key, or a failed one as a new refund record."""
    record = db.session.get(RefundRequest, refund_id)
    if record is None:
        raise RefundRefused("That refund does not exist.")
    if record.status == "sending":
        return send_refund(record, admin, ip)
    if record.status != "failed":
        raise RefundRefused("Only a failed refund can be tried again.")
    return request_refund(admin, record.charge_id, record.amount, record.reason, record.note,
                          form_token, ip, retry_of=record)


def follow_stripe_refund(row: Refund | None) -> None:
    """Bring the portal's refund record in line with a refund Stripe just reported."""
    if row is None:
        return
    record = db.session.scalar(
        db.select(RefundRequest).where(RefundRequest.stripe_refund_id == row.stripe_refund_id))
    # Every refund that succeeds is told to the customer, also one made at Stripe directly.
    send_refund_succeeded(row)
    if record is None:
        return
    status = PORTAL_STATUS.get(row.status, row.status)
    if status == record.status or status not in ("pending", "succeeded", "failed", "canceled"):
        return
    try:
        changed = record.transition(status, "Stripe reported the refund as failed."
                                    if status == "failed" else None)
    except ValueError:
        return  # an older report after a final one: the record keeps what it knows
    if changed and status in ("failed", "canceled"):
        # The failed amount goes back onto the charge at Stripe: mirror it so it can be retried.
        sync.charge(stripe_client().v1.charges.retrieve(row.stripe_charge_id))
        record_audit(None, f"refund.{status}", "refund", record.id, amount=record.amount,
                     currency=record.currency, account_id=record.account_id,
                     details={"stripe_refund": row.stripe_refund_id})
