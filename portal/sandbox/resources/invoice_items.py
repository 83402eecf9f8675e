"""Invoice items: one-off charges and prorations waiting for (or placed on) an invoice."""

from __future__ import annotations

from typing import Any

from ..billing import catalog, collection, invoice_build, pricing
from ..billing.invoice_items import new_invoice_item
from ..core.api import route
from ..core.context import Ctx
from ..core.currencies import check_currency
from ..core.errors import invalid
from ..core.lists import Filter, equals, field, filtered, paginate
from ..core.objects import apply_metadata, deleted_stub, fetch, save
from ..core.params import LIST_SPEC, Bool, Int, List, Meta, Str, need

PERIOD = {"start": Int(), "end": Int()}
UPDATE_SPEC = {
    "amount": Int(),
    "description": Str(),
    "discountable": Bool(),
    "metadata": Meta(),
    "period": PERIOD,
    "price": Str(),
    "pricing": {"price": Str()},
    "quantity": Int(minimum=0),
    "tax_rates": List(Str()),
    "unit_amount_decimal": Str(),
}
CREATE_SPEC = {
    **UPDATE_SPEC,
    "customer": Str(),
    "currency": Str(),
    "invoice": Str(),
    "subscription": Str(),
}


def _amounts(ctx: Ctx, p: dict[str, Any], currency: str | None) -> tuple[int, str, Any, int]:
    """Resolve amount, currency, price and quantity from amount | price | unit_amount_decimal."""
    price_id = p.get("price") or (p.get("pricing") or {}).get("price")
    quantity = p.get("quantity", 1)
    if price_id:
        price = fetch(ctx, "price", price_id, kind="price", param="price")
        amount = pricing.amount_for_quantity(catalog.price_terms(price), quantity)
        return amount, price["currency"], price, quantity
    if p.get("unit_amount_decimal") is not None:
        fake = {"unit_amount_decimal": p["unit_amount_decimal"]}
        return pricing.amount_for_quantity(fake, quantity), currency or "", None, quantity
    if p.get("amount") is None:
        raise invalid(
            "You must specify either `amount`, `pricing[price]` or `unit_amount_decimal`.", "amount"
        )
    return p["amount"], currency or "", None, quantity


@route("/v1/invoiceitems", methods=["POST"])
def create_invoice_item(ctx: Ctx) -> dict:
    """Create a pending invoice item, or add it to a draft invoice."""
    p = ctx.validate(CREATE_SPEC)
    need(p, "customer")
    customer = fetch(ctx, "customer", p["customer"], kind="customer", param="customer")
    amount, currency, price, quantity = _amounts(ctx, p, p.get("currency"))
    currency = check_currency(currency or p.get("currency") or customer.get("currency") or "usd")
    at = ctx.now(customer=customer["id"])
    period = p.get("period") or {}
    tax_rates = [
        fetch(ctx, "tax_rate", t, kind="tax rate", param="tax_rates")
        for t in p.get("tax_rates") or []
    ]
    if p.get("subscription"):
        fetch(ctx, "subscription", p["subscription"], kind="subscription", param="subscription")
    ii = new_invoice_item(
        ctx,
        customer["id"],
        at=at,
        amount=amount,
        currency=currency,
        description=p.get("description"),
        period=(period.get("start", at), period.get("end", at)),
        quantity=quantity,
        price=price,
        proration=False,
        subscription_id=p.get("subscription"),
        subscription_item_id=None,
        tax_rates=tax_rates,
        discountable=p.get("discountable", True),
        metadata=p.get("metadata") or {},
        unit_amount_decimal=p.get("unit_amount_decimal"),
    )
    invoice = None
    if p.get("invoice"):
        invoice = fetch(ctx, "invoice", p["invoice"], kind="invoice", param="invoice")
        if invoice["status"] != "draft":
            raise invalid("You can only add invoice items to draft invoices.", "invoice")
        ii["invoice"] = invoice["id"]
    ctx.store.insert(ii, customer=customer["id"], test_clock=ii["test_clock"])
    ctx.emit("invoiceitem.created", ii)
    if invoice is not None:
        invoice_build.add_invoice_item_line(invoice, ii)
        invoice_build.recompute(ctx.store, invoice)
        collection.save_invoice(ctx, invoice)
    return ii


@route("/v1/invoiceitems/<obj_id>", methods=["GET"])
def retrieve_invoice_item(ctx: Ctx, obj_id: str) -> dict:
    """Retrieve an invoice item."""
    ctx.validate({})
    return fetch(ctx, "invoiceitem", obj_id, kind="invoiceitem")


def _editable(ctx: Ctx, ii: dict[str, Any]) -> dict[str, Any] | None:
    """Return the draft invoice holding an item (None when pending); refuse finalized ones."""
    if not ii.get("invoice"):
        return None
    invoice = fetch(ctx, "invoice", ii["invoice"], kind="invoice")
    if invoice["status"] != "draft":
        raise invalid("Invoice items on finalized invoices cannot be modified or deleted.")
    return invoice


def _drop_line(invoice: dict[str, Any], ii_id: str) -> None:
    invoice["_lines"] = [
        line
        for line in invoice["_lines"]
        if (
            (line["parent"].get("invoice_item_details") or {}).get("invoice_item")
            or (line["parent"].get("subscription_item_details") or {}).get("invoice_item")
        )
        != ii_id
    ]


@route("/v1/invoiceitems/<obj_id>", methods=["POST"])
def update_invoice_item(ctx: Ctx, obj_id: str) -> dict:
    """Update a pending (or draft-invoice) invoice item."""
    p = ctx.validate(UPDATE_SPEC)
    ii = fetch(ctx, "invoiceitem", obj_id, kind="invoiceitem")
    invoice = _editable(ctx, ii)
    if any(k in p for k in ("amount", "price", "pricing", "quantity", "unit_amount_decimal")):
        merged = {"amount": ii["amount"], "quantity": ii["quantity"], **p}
        amount, _, price, quantity = _amounts(ctx, merged, ii["currency"])
        ii.update(amount=amount, net_amount=amount, quantity=quantity)
        if price is not None:
            ii["pricing"]["price_details"] = {"price": price["id"], "product": price["product"]}
    for key in ("description", "discountable"):
        if key in p:
            ii[key] = p[key]
    if "period" in p and p["period"]:
        ii["period"] = {
            "end": p["period"].get("end", ii["period"]["end"]),
            "start": p["period"].get("start", ii["period"]["start"]),
        }
    if "tax_rates" in p:
        ii["tax_rates"] = [
            fetch(ctx, "tax_rate", t, kind="tax rate", param="tax_rates")
            for t in p["tax_rates"] or []
        ]
    apply_metadata(ii, p)
    save(ctx, ii)
    if invoice is not None:
        _drop_line(invoice, ii["id"])
        invoice_build.add_invoice_item_line(invoice, ii)
        invoice_build.recompute(ctx.store, invoice)
        collection.save_invoice(ctx, invoice)
    ctx.emit("invoiceitem.updated", ii)
    return ii


@route("/v1/invoiceitems/<obj_id>", methods=["DELETE"])
def delete_invoice_item(ctx: Ctx, obj_id: str) -> dict:
    """Delete a pending (or draft-invoice) invoice item."""
    ctx.validate({})
    ii = fetch(ctx, "invoiceitem", obj_id, kind="invoiceitem")
    invoice = _editable(ctx, ii)
    if invoice is not None:
        _drop_line(invoice, ii["id"])
        invoice_build.recompute(ctx.store, invoice)
        collection.save_invoice(ctx, invoice)
    ctx.store.mark_deleted(ii["id"])
    ctx.emit("invoiceitem.deleted", ii)
    return deleted_stub(ii)


@route("/v1/invoiceitems", methods=["GET"])
def list_invoice_items(ctx: Ctx) -> dict:
    """List invoice items, filtered by customer, invoice or pending state."""
    p = ctx.validate({**LIST_SPEC, "customer": Str(), "invoice": Str(), "pending": Bool()})
    filters = {
        "customer": equals("customer"),
        "invoice": equals(field("invoice")),
        "pending": Filter(f"{field('invoice')} IS NULL", lambda _: []),
    }
    return paginate(
        ctx.store, p, "/v1/invoiceitems", obj_type="invoiceitem", **filtered(p, filters)
    )
