"""Invoices: create, retrieve, list, update, delete drafts, finalize, pay, void, mark
uncollectible, list lines, and the invoice_payments that record payment attempts.

Manual invoices (billing_reason ``manual``) take pending invoice items only with
``pending_invoice_items_behavior=include``.  A draft with auto_advance finalizes one hour
after creation; an open invoice with auto_advance is charged one hour after finalization
(the engine does both).
"""

from __future__ import annotations

from ..billing import collection, discounts, invoice_build
from ..billing.cycle import pending_items, refresh_metered_lines
from ..core.api import route
from ..core.context import Ctx
from ..core.errors import invalid
from ..core.lists import equals, field, filtered, paginate
from ..core.objects import apply_metadata, fetch
from ..core.params import LIST_SPEC, Bool, Int, List, Meta, Str, need
from ..core.render import renderer
from ..core.store import Store
from ..objects.payment_methods import decline_error

FINALIZE_DELAY = 3600
STATUSES = ("draft", "open", "paid", "uncollectible", "void")
DRAFT_SPEC = {
    "auto_advance": Bool(),
    "collection_method": Str(("charge_automatically", "send_invoice")),
    "days_until_due": Int(minimum=0),
    "default_payment_method": Str(),
    "default_tax_rates": List(Str()),
    "description": Str(),
    "discounts": List({"coupon": Str(), "discount": Str(), "promotion_code": Str()}),
    "footer": Str(),
    "metadata": Meta(),
}
CREATE_SPEC = {
    **DRAFT_SPEC,
    "customer": Str(),
    "currency": Str(),
    "subscription": Str(),
    "pending_invoice_items_behavior": Str(("exclude", "include")),
}


@renderer("invoice")
def _render(store: Store, invoice: dict) -> dict:
    """Fill ``lines`` with the first page of the invoice's lines."""
    invoice["lines"] = invoice_build.lines_page(invoice, {})
    return invoice


def load(ctx: Ctx, invoice_id: str) -> dict:
    """Return an invoice or raise 404 "No such invoice"."""
    return fetch(ctx, "invoice", invoice_id, kind="invoice")


def _discount_ids(ctx: Ctx, invoice: dict, entries: list[dict] | None) -> list[str]:
    """Create invoice-level discount objects for discounts[] entries."""
    return discounts.create_discounts(
        ctx,
        entries or [],
        customer_id=invoice["customer"],
        at=invoice["created"],
        invoice_id=invoice["id"],
        clock_id=invoice.get("test_clock"),
    )


def _tax_rates(ctx: Ctx, ids: list[str] | None) -> list[dict]:
    return [
        fetch(ctx, "tax_rate", t, kind="tax rate", param="default_tax_rates") for t in ids or []
    ]


def _apply_draft(ctx: Ctx, invoice: dict, p: dict) -> None:
    for key in (
        "auto_advance",
        "collection_method",
        "default_payment_method",
        "description",
        "footer",
    ):
        if key in p:
            invoice[key] = p[key]
    if "days_until_due" in p and p["days_until_due"] is not None:
        invoice["due_date"] = invoice["created"] + p["days_until_due"] * 86_400
    if "default_tax_rates" in p:
        invoice["default_tax_rates"] = _tax_rates(ctx, p["default_tax_rates"])
    if "discounts" in p:
        invoice["discounts"] = _discount_ids(ctx, invoice, p["discounts"])
    if invoice["collection_method"] == "send_invoice" and invoice["due_date"] is None:
        raise invalid("Missing required param: days_until_due.", "days_until_due")
    invoice["automatically_finalizes_at"] = (
        invoice["created"] + FINALIZE_DELAY if invoice["auto_advance"] else None
    )
    apply_metadata(invoice, p)


@route("/v1/invoices", methods=["POST"])
def create_invoice(ctx: Ctx) -> dict:
    """Create a draft invoice for a customer."""
    p = ctx.validate(CREATE_SPEC)
    need(p, "customer")
    customer = fetch(ctx, "customer", p["customer"], kind="customer", param="customer")
    at = ctx.now(customer=customer["id"])
    currency = (p.get("currency") or customer.get("currency") or "usd").lower()
    sub = None
    if p.get("subscription"):
        sub = fetch(
            ctx, "subscription", p["subscription"], kind="subscription", param="subscription"
        )
        currency = sub["currency"]
    invoice = invoice_build.new_invoice(
        ctx, customer, at=at, billing_reason="manual", currency=currency, subscription=sub
    )
    _apply_draft(ctx, invoice, p)
    if p.get("pending_invoice_items_behavior") == "include":
        for ii in pending_items(ctx, customer["id"], sub["id"] if sub else None):
            if ii["currency"] == currency:
                ii["invoice"] = invoice["id"]
                ctx.store.save(ii)
                invoice_build.add_invoice_item_line(invoice, ii)
    invoice_build.recompute(ctx.store, invoice)
    ctx.store.insert(invoice, customer=customer["id"], test_clock=customer.get("test_clock"))
    collection.save_invoice(ctx, invoice)
    ctx.emit("invoice.created", invoice)
    return invoice


@route("/v1/invoices/<obj_id>", methods=["GET"])
def retrieve_invoice(ctx: Ctx, obj_id: str) -> dict:
    """Retrieve an invoice."""
    ctx.validate({})
    return load(ctx, obj_id)


@route("/v1/invoices/<obj_id>", methods=["POST"])
def update_invoice(ctx: Ctx, obj_id: str) -> dict:
    """Update a draft invoice (only metadata and description once finalized)."""
    p = ctx.validate(DRAFT_SPEC)
    invoice = load(ctx, obj_id)
    before = {**invoice, "metadata": dict(invoice["metadata"])}
    if invoice["status"] != "draft":
        if set(p) - {"metadata", "description", "footer", "auto_advance"}:
            raise invalid("Finalized invoices can't be updated in this way.")
        for key in ("description", "footer", "auto_advance"):
            if key in p:
                invoice[key] = p[key]
        apply_metadata(invoice, p)
    else:
        _apply_draft(ctx, invoice, p)
        invoice_build.recompute(ctx.store, invoice)
    collection.save_invoice(ctx, invoice)
    if invoice != before:
        ctx.emit("invoice.updated", invoice, before=before)
    return invoice


@route("/v1/invoices/<obj_id>", methods=["DELETE"])
def delete_invoice(ctx: Ctx, obj_id: str) -> dict:
    """Delete a draft invoice; its invoice items become pending again."""
    ctx.validate({})
    invoice = load(ctx, obj_id)
    if invoice["status"] != "draft":
        raise invalid("You can only delete draft invoices.")
    for ii in ctx.store.select("invoiceitem", "json_extract(body, '$.invoice') = ?", (obj_id,)):
        ii["invoice"] = None
        ctx.store.save(ii)
    ctx.store.mark_deleted(obj_id)
    ctx.emit("invoice.deleted", invoice)
    return {"id": obj_id, "object": "invoice", "deleted": True}


@route("/v1/invoices/<obj_id>/finalize", methods=["POST"])
def finalize_invoice(ctx: Ctx, obj_id: str) -> dict:
    """Finalize a draft; with auto_advance its payment is attempted an hour later."""
    p = ctx.validate({"auto_advance": Bool()})
    invoice = load(ctx, obj_id)
    if invoice["status"] != "draft":
        raise invalid(
            "This invoice is already finalized, you can't re-finalize a non-draft invoice."
        )
    if "auto_advance" in p:
        invoice["auto_advance"] = p["auto_advance"]
    at = ctx.now(customer=invoice["customer"])
    refresh_metered_lines(ctx, invoice)
    collection.finalize(ctx, invoice, at)
    invoice = load(ctx, obj_id)
    if (
        invoice["status"] == "open"
        and invoice["auto_advance"]
        and invoice["collection_method"] == "charge_automatically"
    ):
        invoice["next_payment_attempt"] = at + FINALIZE_DELAY
        collection.save_invoice(ctx, invoice)
    return invoice


@route("/v1/invoices/<obj_id>/pay", methods=["POST"])
def pay_invoice(ctx: Ctx, obj_id: str) -> dict:
    """Attempt payment now (finalizing a draft first); a decline answers 402."""
    p = ctx.validate(
        {
            "payment_method": Str(),
            "off_session": Bool(),
            "paid_out_of_band": Bool(),
            "forgive": Bool(),
            "source": Str(),
            "mandate": Str(),
        }
    )
    invoice = load(ctx, obj_id)
    at = ctx.now(customer=invoice["customer"])
    if invoice["status"] == "draft":
        collection.finalize(ctx, invoice, at)
        invoice = load(ctx, obj_id)
    if invoice["status"] == "paid":
        raise invalid("Invoice is already paid")
    if invoice["status"] != "open":
        raise invalid(f"This invoice can no longer be paid because it is {invoice['status']}.")
    if p.get("paid_out_of_band"):
        return collection.settle_paid(ctx, invoice, at)
    if p.get("payment_method"):
        pm = ctx.store.get(p["payment_method"], "payment_method")
        if pm is None or pm.get("customer") != invoice["customer"]:
            raise invalid(
                f"No such PaymentMethod: '{p['payment_method']}'",
                "payment_method",
                "resource_missing",
            )
    pi = collection.attempt_payment(
        ctx,
        invoice,
        at,
        off_session=p.get("off_session", True),
        payment_method=p.get("payment_method"),
    )
    invoice = load(ctx, obj_id)
    if invoice["status"] == "paid":
        return invoice
    if pi is None:
        raise invalid(
            "This customer has no attached payment source or default payment "
            "method. Please consider adding a default payment method."
        )
    pm = ctx.store.get(pi["payment_method"], "payment_method") or {}
    error = pi.get("last_payment_error") or {
        "code": "invoice_payment_intent_requires_action",
        "decline_code": None,
        "message": "Payment for this invoice requires a payment method with authentication.",
    }
    raise decline_error(pm, error, commit=True)


@route("/v1/invoices/<obj_id>/void", methods=["POST"])
def void_invoice(ctx: Ctx, obj_id: str) -> dict:
    """Void an open invoice."""
    ctx.validate({})
    invoice = load(ctx, obj_id)
    if invoice["status"] != "open":
        raise invalid("You can only pass in open invoices. This invoice isn't open.")
    return collection.void(ctx, invoice, ctx.now(customer=invoice["customer"]))


@route("/v1/invoices/<obj_id>/mark_uncollectible", methods=["POST"])
def mark_uncollectible(ctx: Ctx, obj_id: str) -> dict:
    """Mark an open invoice uncollectible."""
    ctx.validate({})
    invoice = load(ctx, obj_id)
    if invoice["status"] != "open":
        raise invalid("You can only mark open invoices as uncollectible.")
    return collection.mark_uncollectible(ctx, invoice, ctx.now(customer=invoice["customer"]))


@route("/v1/invoices", methods=["GET"])
def list_invoices(ctx: Ctx) -> dict:
    """List invoices by customer, subscription, status or collection method."""
    p = ctx.validate(
        {
            **LIST_SPEC,
            "customer": Str(),
            "subscription": Str(),
            "status": Str(STATUSES),
            "collection_method": Str(),
            "due_date": Int(),
        }
    )
    filters = {
        "customer": equals("customer"),
        **{key: equals(field(key)) for key in ("subscription", "status", "collection_method")},
    }
    return paginate(ctx.store, p, "/v1/invoices", obj_type="invoice", **filtered(p, filters))


@route("/v1/invoices/<obj_id>/lines", methods=["GET"])
def list_invoice_lines(ctx: Ctx, obj_id: str) -> dict:
    """Page through an invoice's lines."""
    p = ctx.validate(LIST_SPEC)
    return invoice_build.lines_page(load(ctx, obj_id), p)


@route("/v1/invoice_payments", methods=["GET"])
def list_invoice_payments(ctx: Ctx) -> dict:
    """List the payments recorded for invoices (filter by invoice or PaymentIntent)."""
    p = ctx.validate(
        {
            **LIST_SPEC,
            "invoice": Str(),
            "payment": {"type": Str(), "payment_intent": Str()},
            "status": Str(),
        }
    )
    filters = {key: equals(field(key)) for key in ("invoice", "payment.payment_intent", "status")}
    return paginate(
        ctx.store, p, "/v1/invoice_payments", obj_type="invoice_payment", **filtered(p, filters)
    )


@route("/v1/invoice_payments/<obj_id>", methods=["GET"])
def retrieve_invoice_payment(ctx: Ctx, obj_id: str) -> dict:
    """Retrieve one invoice payment."""
    ctx.validate({})
    return fetch(ctx, "invoice_payment", obj_id, kind="invoice payment")
