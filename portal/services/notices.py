"""Billing emails: receipts, failed payments, reminders, cancellations and email changes.

Each is queued (services.mail) in the transaction that learned of it, under a key naming
what it is about, so a webhook delivered twice or replayed never sends it twice.
"""
from __future__ import annotations

from flask import render_template

from portal.extensions import db
from portal.models import Account, Charge, Invoice, Price, Refund, Subscription, User
from portal.models.account import Role
from portal.services.billing_details import email_change_token
from portal.services.links import external_url
from portal.services.mail import queue_mail
from portal.services.mail_attachments import invoice_pdf_attachment
from portal.services.money import format_money
from portal.services.statements import failure_reason


def billing_address(account: Account) -> str | None:
    """Return where billing emails go: the billing email, else the account's first member."""
    if account.billing_email:
        return account.billing_email
    member = db.session.scalar(db.select(User.email).where(
        User.account_id == account.id, User.role == Role.CUSTOMER.value,
        User.active.is_(True)).order_by(User.id).limit(1))
    return member


def _queue(kind: str, to: str, subject: str, dedupe_key: str, attachments=(), **context):
    """Render a mail's text and HTML templates and queue it once under `dedupe_key`."""
    text = render_template(f"mail/{kind}.txt", **context)
    html = render_template(f"mail/{kind}.html", **context)
    return queue_mail(to=to, subject=subject, text=text, html=html, attachments=attachments,
                      dedupe_key=dedupe_key)


def send_receipt(invoice: Invoice) -> bool:
    """Queue the receipt of a paid invoice; its PDF is rendered and attached when it is sent."""
    account = invoice.account
    to = billing_address(account) if account else None
    if not to or invoice.status != "paid":
        return False
    key = f"receipt:{invoice.stripe_invoice_id}"
    return _queue("receipt", to, f"Receipt for invoice {invoice.number}", key,
                  attachments=[invoice_pdf_attachment(invoice)],
                  invoice=invoice, account=account,
                  invoice_url=external_url("billing.invoice", invoice_id=invoice.stripe_invoice_id))


def send_payment_failed(invoice: Invoice) -> bool:
    """Queue the notice of a failed payment: amount, reason, next retry and a pay link."""
    account = invoice.account
    to = billing_address(account) if account else None
    if not to or invoice.status != "open" or invoice.amount_remaining <= 0:
        return False
    return _queue(
        "payment_failed", to, f"Payment failed for invoice {invoice.number}",
        f"payment-failed:{invoice.stripe_invoice_id}:{invoice.attempt_count}",
        invoice=invoice, account=account, reason=failure_reason(invoice),
        pay_url=external_url("billing.invoice", invoice_id=invoice.stripe_invoice_id) + "#pay")


def send_trial_reminder(subscription: Subscription) -> bool:
    """Queue the reminder that a trial ends in a few days (unless reminders are off)."""
    account = subscription.account
    if account is None or not account.reminder_emails or not subscription.trial_end:
        return False
    to = billing_address(account)
    if not to or subscription.status != "trialing":
        return False
    return _queue(
        "trial_reminder", to, "Your trial ends soon",
        f"trial-reminder:{subscription.stripe_subscription_id}:"
        f"{int(subscription.trial_end.timestamp())}",
        subscription=subscription, account=account, price=_price(subscription),
        billing_url=external_url("billing.dashboard"))


def send_renewal_reminder(upcoming: dict, subscription: Subscription | None) -> bool:
    """Queue the reminder of a yearly renewal from an invoice.upcoming preview."""
    if subscription is None or subscription.account is None:
        return False
    account = subscription.account
    price = _price(subscription)
    if not account.reminder_emails or price is None or price.interval != "year":
        return False
    to = billing_address(account)
    renews_at = subscription.current_period_end
    if not to or renews_at is None or subscription.cancel_at_period_end:
        return False
    return _queue(
        "renewal_reminder", to, "Your yearly subscription renews soon",
        f"renewal-reminder:{subscription.stripe_subscription_id}:{int(renews_at.timestamp())}",
        subscription=subscription, account=account, price=price, renews_at=renews_at,
        amount=upcoming.get("amount_due") or upcoming.get("total") or 0,
        currency=upcoming.get("currency") or subscription.currency,
        billing_url=external_url("billing.dashboard"))


def send_cancellation(subscription: Subscription) -> bool:
    """Queue the notice that a subscription has been canceled."""
    account = subscription.account
    to = billing_address(account) if account else None
    if not to or subscription.status != "canceled":
        return False
    return _queue(
        "canceled", to, "Your subscription has been canceled",
        f"canceled:{subscription.stripe_subscription_id}",
        subscription=subscription, account=account, price=_price(subscription),
        plans_url=external_url("billing.plans"))


def refund_notice(charge: Charge, amount: int) -> str:
    """Return what a customer is told about a refund of `amount` from `charge`."""
    invoice = _charge_invoice(charge)
    paid_for = f"invoice {invoice.number}" if invoice and invoice.number else "your payment"
    return (f"We have refunded {format_money(amount, charge.currency)} of {paid_for} "
            f"({format_money(charge.amount_captured, charge.currency)}) to the card it was "
            "paid with. Depending on your bank it appears on your statement within 5 to 10 "
            "business days.")


def send_refund_succeeded(refund: Refund) -> bool:
    """Queue the notice of a refund Stripe reports as succeeded, once per Stripe refund."""
    if refund.status != "succeeded" or not refund.stripe_charge_id:
        return False
    charge = db.session.scalar(db.select(Charge).where(
        Charge.stripe_charge_id == refund.stripe_charge_id))
    account_id = refund.account_id or (charge.account_id if charge else None)
    account = db.session.get(Account, account_id) if account_id else None
    to = billing_address(account) if account else None
    if not to or charge is None:
        return False
    invoice = _charge_invoice(charge)
    return _queue(
        "refund", to, f"Refund of {format_money(refund.amount, refund.currency)}",
        f"refund:{refund.stripe_refund_id}",
        refund=refund, account=account, notice=refund_notice(charge, refund.amount),
        invoice=invoice,
        invoice_url=external_url("billing.invoice", invoice_id=invoice.stripe_invoice_id)
        if invoice else None)


def _charge_invoice(charge: Charge) -> Invoice | None:
    """Return the mirrored invoice a charge paid, when Stripe named it."""
    if not charge.stripe_invoice_id:
        return None
    return db.session.scalar(
        db.select(Invoice).where(Invoice.stripe_invoice_id == charge.stripe_invoice_id))


def send_email_change_link(user: User, new_email: str, password: str) -> bool:
    """Send a confirmation link to the new address; the change waits until it is opened."""
    token = email_change_token(user, new_email, password)
    link = external_url("billing.confirm_email", token=token)
    queued = _queue("email_change", new_email.strip().lower(),
                    "Confirm your new billing portal email", None,
                    user=user, new_email=new_email.strip().lower(), link=link)
    db.session.commit()
    return queued


def _price(subscription: Subscription) -> Price | None:
    """Return the mirrored plan price of a subscription."""
    if not subscription.stripe_price_id:
        return None
    return db.session.scalar(db.select(Price).where(
        Price.stripe_price_id == subscription.stripe_price_id))
