"""Invoice collection: finalize, payment attempts, retries, and the paid/void/uncollectible ends.

Rules:
- Finalizing numbers the invoice ``<customer invoice_prefix>-<4-digit sequence>`` and applies
  the customer's balance (a credit lowers amount_due; a negative total becomes credit).
- Billing credits apply at finalization, before the customer's balance (see ``credits``).
- An invoice whose amount_due is 0 is paid at finalization (invoice.paid and
  invoice.payment_succeeded follow invoice.finalized); one below the currency's minimum
  charge is marked paid and its amount carried to the customer's balance, as Stripe does.
- Payment attempts create a PaymentIntent through the payment-intent module, so test cards
  behave exactly as they do for direct payments.  The payment method is the one passed, else
  the invoice's, the subscription's, then the customer's invoice_settings default.
- Failed renewal payments are retried on the dunning schedule (see ``dunning``); the first
  invoice of an incomplete subscription is never retried.
"""

from __future__ import annotations

from typing import Any

from ..core.context import Ctx
from ..core.currencies import minimum_charge
from ..core.events import on
from ..core.ids import new_id, random_token
from ..objects import customer_balance
from ..objects.payment_intents import create_payment
from . import credits
from . import subscription_state as subs
from .invoice_build import customer_details
from .invoice_state import INVOICE, payment_transition, save_invoice, transition


def public_url(ctx: Ctx, path: str) -> str:
    """Return an absolute URL of a sandbox page, under the root that served this request."""
    root = ctx.url_root if ctx.url_root != "/" else ctx.config.get("SANDBOX_PUBLIC_URL", "/")
    return str(root).rstrip("/") + path


def finalize(ctx: Ctx, invoice: dict[str, Any], at: int) -> dict[str, Any]:
    """Turn a draft into an open invoice (number, balance, URLs); pay it if nothing is due."""
    customer = ctx.store.get(invoice["customer"], "customer", include_deleted=True) or {}
    # The customer's details as they are now are the ones the final invoice keeps.
    if customer:
        invoice.update(customer_details(ctx.store, customer))
    sequence = int(customer.get("next_invoice_sequence") or 1)
    invoice["number"] = f"{customer.get('invoice_prefix') or 'SANDBOX'}-{sequence:04d}"
    credits.apply_to_invoice(ctx, invoice, at)
    balance = int(customer.get("balance") or 0)
    applied = invoice["total"] + balance
    invoice["starting_balance"] = balance
    invoice["amount_due"] = max(applied, 0)
    invoice["amount_remaining"] = invoice["amount_due"]
    carried = 0 < invoice["amount_due"] < minimum_charge(invoice["currency"])
    # Too small to charge: the amount moves to the customer's balance for the next invoice.
    invoice["ending_balance"] = invoice["amount_due"] if carried else min(applied, 0)
    if customer:
        customer["next_invoice_sequence"] = sequence + 1
        ctx.store.save(customer)
        if invoice["ending_balance"] != balance:
            customer_balance.record(
                ctx,
                customer,
                invoice["ending_balance"] - balance,
                invoice["currency"],
                "applied_to_invoice",
                invoice=invoice["id"],
            )
    # The hosted page is reachable by whoever holds the URL, so it names a secret, not the id.
    token = random_token(32)
    transition(
        ctx,
        invoice,
        "open",
        at,
        effective_at=at,
        automatically_finalizes_at=None,
        webhooks_delivered_at=at,
        _page_token=token,
        hosted_invoice_url=public_url(ctx, f"/invoice/{token}"),
        invoice_pdf=public_url(ctx, f"/invoice/{token}/pdf"),
    )
    if invoice["amount_due"] == 0 or carried:
        settle_paid(ctx, invoice, at)
    return invoice


def _payment_method(ctx: Ctx, invoice: dict[str, Any], sub: dict[str, Any] | None) -> str | None:
    if invoice.get("default_payment_method"):
        return invoice["default_payment_method"]
    if sub and sub.get("default_payment_method"):
        return sub["default_payment_method"]
    customer = ctx.store.get(invoice["customer"], "customer") or {}
    return (customer.get("invoice_settings") or {}).get("default_payment_method")


def _subscription(ctx: Ctx, invoice: dict[str, Any]) -> dict[str, Any] | None:
    sub_id = invoice.get("subscription")
    return ctx.store.get(sub_id, subs.SUBSCRIPTION) if sub_id else None


def _record_payment(ctx: Ctx, invoice: dict[str, Any], pi: dict[str, Any], at: int) -> None:
    """Remember the PaymentIntent on the invoice: confirmation secret and invoice_payment row."""
    invoice["_payment_intent"] = pi["id"]
    invoice["_confirmation_secret"] = {
        "client_secret": pi.get("client_secret"),
        "type": "payment_intent",
    }
    ctx.store.insert(
        {
            "id": new_id("inpay"),
            "object": "invoice_payment",
            "amount_paid": None,
            "amount_requested": invoice["amount_remaining"],
            "created": at,
            "currency": invoice["currency"],
            "invoice": invoice["id"],
            "is_default": True,
            "livemode": False,
            "payment": {"payment_intent": pi["id"], "type": "payment_intent"},
            "status": "open",
            "status_transitions": {"canceled_at": None, "paid_at": None},
        },
        customer=invoice["customer"],
        test_clock=invoice.get("test_clock"),
    )


def create_invoice_payment_intent(
    ctx: Ctx,
    invoice: dict[str, Any],
    at: int,
    *,
    confirm: bool,
    off_session: bool,
    payment_method: str | None = None,
) -> dict[str, Any] | None:
    """Create (and optionally confirm) the PaymentIntent that pays an open invoice."""
    sub = _subscription(ctx, invoice)
    pm = payment_method or _payment_method(ctx, invoice, sub)
    stored = ctx.store.get(pm or "", "payment_method")
    if stored is None or stored.get("customer") != invoice["customer"]:
        # A default that was detached since cannot be charged: the attempt fails like no method.
        pm = None
    if confirm and pm is None:
        return None
    pi = create_payment(
        ctx,
        amount=invoice["amount_remaining"],
        currency=invoice["currency"],
        customer=invoice["customer"],
        payment_method=pm,
        off_session=off_session,
        description=f"Invoice {invoice['number']}",
        metadata={},
        confirm=confirm,
    )
    _record_payment(ctx, invoice, pi, at)
    save_invoice(ctx, invoice)
    return pi


def attempt_payment(
    ctx: Ctx,
    invoice: dict[str, Any],
    at: int,
    *,
    off_session: bool = True,
    payment_method: str | None = None,
) -> dict[str, Any] | None:
    """Try to collect an open invoice now; returns the PaymentIntent (None without a method)."""
    pi = create_invoice_payment_intent(
        ctx, invoice, at, confirm=True, off_session=off_session, payment_method=payment_method
    )
    invoice = ctx.store.get(invoice["id"], INVOICE) or invoice
    if invoice["status"] == "paid":
        return pi
    invoice["attempt_count"] += 1
    invoice["attempted"] = True
    if pi is not None and pi["status"] == "succeeded":
        save_invoice(ctx, invoice)
        settle_paid(ctx, invoice, at)
    elif pi is not None and pi["status"] == "requires_action":
        _after_failure(ctx, invoice, at, "invoice.payment_action_required")
    else:
        _after_failure(ctx, invoice, at, "invoice.payment_failed")
    return pi


def _after_failure(ctx: Ctx, invoice: dict[str, Any], at: int, event_type: str) -> None:
    """Schedule the next retry (or give up), emit the failure, then move the subscription."""
    sub = _subscription(ctx, invoice)
    first_attempt = sub is not None and sub["status"] == "incomplete"
    # A pending update's invoice is not retried and leaves the subscription as it was: the
    # update expires instead (docs.stripe.com/billing/subscriptions/pending-updates-reference).
    held = sub is not None and (sub.get("_pending_change") or {}).get("invoice") == invoice["id"]
    invoice.setdefault("_first_failed_at", at)
    retry = (
        None
        if first_attempt or held
        else subs.policy(ctx).next_attempt_at(invoice["_first_failed_at"], invoice["attempt_count"])
    )
    invoice["next_payment_attempt"] = retry if invoice.get("auto_advance") else None
    save_invoice(ctx, invoice)
    ctx.emit(event_type, invoice)
    if sub is None or first_attempt or held or sub.get("latest_invoice") != invoice["id"]:
        return
    if retry is None and invoice.get("auto_advance"):
        final = subs.policy(ctx).subscription_status_after_exhaustion()
        if final != sub["status"]:
            subs.transition(ctx, sub, final, at, reason="payment_failed")
    elif sub["status"] in ("active", "trialing"):
        subs.transition(ctx, sub, "past_due", at)


def settle_paid(ctx: Ctx, invoice: dict[str, Any], at: int) -> dict[str, Any]:
    """Mark an invoice paid (once), emit invoice.paid/payment_succeeded, revive its subscription."""
    if invoice["status"] == "paid":
        return invoice
    for row in ctx.store.select(
        "invoice_payment", "json_extract(body, '$.invoice') = ?", (invoice["id"],)
    ):
        if row["payment"]["payment_intent"] == invoice.get("_payment_intent"):
            payment_transition(ctx, row, "paid", at, amount_paid=invoice["amount_due"])
    transition(
        ctx,
        invoice,
        "paid",
        at,
        amount_paid=invoice["amount_due"],
        amount_remaining=0,
        next_payment_attempt=None,
        auto_advance=False,
    )
    sub = _subscription(ctx, invoice)
    if (
        sub
        and sub.get("latest_invoice") == invoice["id"]
        and sub["status"] in ("incomplete", "past_due", "unpaid")
    ):
        subs.transition(ctx, sub, "active", at)
    return invoice


def void(ctx: Ctx, invoice: dict[str, Any], at: int) -> dict[str, Any]:
    """Void an open invoice."""
    return transition(ctx, invoice, "void", at, next_payment_attempt=None, auto_advance=False)


def mark_uncollectible(ctx: Ctx, invoice: dict[str, Any], at: int) -> dict[str, Any]:
    """Mark an open invoice uncollectible; automatic collection stops."""
    return transition(
        ctx, invoice, "uncollectible", at, next_payment_attempt=None, auto_advance=False
    )


@on("payment_intent.succeeded")
def _pay_invoice_of_intent(ctx: Ctx, event: dict) -> None:
    """Settle the open invoice a PaymentIntent belongs to (a 3-D Secure or client confirmation)."""
    pi = event["data"]["object"]
    for invoice in ctx.store.select(
        INVOICE,
        "json_extract(body, '$._payment_intent') = ? AND json_extract(body, '$.status') = ?",
        (pi["id"], "open"),
    ):
        settle_paid(ctx, invoice, ctx.now(customer=invoice["customer"]))
