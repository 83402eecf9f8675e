"""Subscription invoices: the first invoice, renewals, prorations and pending items.

A renewal invoice bills licensed items in advance for the new period and metered items in
arrears for the period that just closed (their usage aggregated by the item's meter).  Its
period_start/period_end are the closed period, the first invoice's are its creation time.
Pending invoice items of the subscription (prorations) and of the customer without a
subscription are pulled into the next subscription invoice.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP
from typing import Any

from ..core.context import Ctx
from ..core.ids import new_id
from . import catalog, changes, invoice_build, totals, usage
from . import subscription_state as subs
from .invoice_items import new_invoice_item
from .invoice_state import save_invoice
from .proration import ProrationLine

FINALIZE_DELAY = 3600


def metered_quantity(
    ctx: Ctx, price: dict[str, Any], customer_id: str, period: tuple[int, int]
) -> int:
    """Return a metered price's usage over a period as a whole quantity (rounded half up)."""
    meter_id = (price.get("recurring") or {}).get("meter")
    meter = ctx.store.get(meter_id or "", "billing.meter", include_deleted=True)
    if meter is None:
        return 0
    value = usage.usage(ctx.store, meter, customer_id, period[0], period[1])
    return int(value.to_integral_value(rounding=ROUND_HALF_UP))


def refresh_metered_lines(ctx: Ctx, invoice: dict[str, Any]) -> dict[str, Any]:
    """Bring a draft's metered lines to the usage recorded by now, before it is finalized.

    docs.stripe.com/billing/subscriptions/usage-based/configure-grace-period: during the
    finalization grace period usage for the previous period can still be reported, and at
    finalization Stripe updates the invoice to the latest quantity for its billing period.
    """
    if invoice.get("status") != "draft":
        return invoice
    changed = False
    for line in invoice.get("_lines") or []:
        details = (line.get("parent") or {}).get("subscription_item_details") or {}
        price_id = ((line.get("pricing") or {}).get("price_details") or {}).get("price")
        if not details or details.get("proration") or not price_id:
            continue
        price = ctx.store.get(price_id, "price", include_deleted=True) or {}
        if not catalog.is_metered(price):
            continue
        period = (line["period"]["start"], line["period"]["end"])
        used = metered_quantity(ctx, price, invoice["customer"], period)
        if used == line["quantity"]:
            continue
        fresh = invoice_build.metered_line_terms(ctx.store, price, used)
        line["pricing"]["unit_amount_decimal"] = fresh.pop("unit_amount_decimal")
        line.update(fresh, quantity_decimal=str(used), subtotal=fresh["amount"])
        changed = True
    if changed:
        invoice_build.recompute(ctx.store, invoice)
        save_invoice(ctx, invoice)
    return invoice


def applicable_discounts(
    ctx: Ctx, sub: dict[str, Any], period_start: int, *, count: bool
) -> list[str]:
    """Return the subscription's discount ids that reach an invoice for this period."""
    applied = []
    for discount_id in sub.get("discounts") or []:
        discount = ctx.store.get(discount_id, "discount", include_deleted=True)
        if discount is None:
            continue
        coupon = ctx.store.get(
            (discount.get("source") or {}).get("coupon") or "", "coupon", include_deleted=True
        )
        if coupon is None:
            continue
        if totals.discount_applies(
            coupon, discount.get("end"), period_start, int(discount.get("_times_applied") or 0)
        ):
            applied.append(discount_id)
            if count:
                discount["_times_applied"] = int(discount.get("_times_applied") or 0) + 1
                ctx.store.save(discount)
    return applied


def pending_items(ctx: Ctx, customer_id: str, subscription_id: str | None) -> list[dict[str, Any]]:
    """Return pending invoice items for a subscription invoice (its own and the customer's)."""
    rows = ctx.store.select(
        "invoiceitem",
        "customer = ? AND json_extract(body, '$.invoice') IS NULL",
        (customer_id,),
        order="created ASC, seq ASC",
    )
    return [
        ii
        for ii in rows
        if ((ii.get("parent") or {}).get("subscription_details") or {}).get("subscription")
        in (None, subscription_id)
    ]


def build_invoice(
    ctx: Ctx,
    sub: dict[str, Any],
    at: int,
    *,
    billing_reason: str,
    advance: tuple[int, int] | None,
    arrears: tuple[int, int] | None,
    period: tuple[int, int],
    trial: bool = False,
    preview: bool = False,
    items: list[tuple[dict[str, Any], dict[str, Any], int]] | None = None,
    extra: list[dict[str, Any]] | None = None,
    include_pending: bool = True,
) -> dict[str, Any]:
    """Build (without storing) a subscription invoice with its lines and totals.

    ``items`` overrides the subscription's (item, price, quantity) triples, for previews of
    changes; ``extra`` adds not-yet-stored invoice items (proration previews).
    """
    store = ctx.store
    customer = store.get(sub["customer"], "customer", include_deleted=True) or {
        "id": sub["customer"]
    }
    invoice = invoice_build.new_invoice(
        ctx,
        customer,
        at=at,
        billing_reason=billing_reason,
        currency=sub["currency"],
        subscription=sub,
        period=period,
        collection_method=sub["collection_method"],
        days_until_due=sub.get("days_until_due"),
        default_tax_rates=sub.get("default_tax_rates"),
        discounts=applicable_discounts(ctx, sub, advance[0] if advance else at, count=not preview),
        invoice_id=new_id("upcoming_in") if preview else None,
    )
    if items is None:
        items = [
            (
                item,
                store.get(item["price"], "price", include_deleted=True) or {},
                item.get("quantity") or 0,
            )
            for item in subs.items_of(store, sub["id"])
        ]
    for item, price, quantity in items:
        if catalog.is_metered(price):
            if arrears is not None:
                used = metered_quantity(ctx, price, sub["customer"], arrears)
                invoice_build.add_subscription_item_line(
                    store, invoice, item, price, used, arrears, temporary=preview
                )
        elif advance is not None:
            invoice_build.add_subscription_item_line(
                store, invoice, item, price, quantity, advance, trial=trial, temporary=preview
            )
    pending = pending_items(ctx, sub["customer"], sub["id"]) if include_pending else []
    for ii in [*pending, *(extra or [])]:
        invoice_build.add_invoice_item_line(invoice, ii, temporary=preview)
        if not preview and ii in pending:
            ii["invoice"] = invoice["id"]
            store.save(ii)
    invoice_build.recompute(store, invoice)
    if not preview:
        changes.record_debits(ctx, invoice)
    return invoice


def store_new_invoice(ctx: Ctx, invoice: dict[str, Any], *, auto_advance: bool, at: int) -> None:
    """Insert a built draft and emit invoice.created; auto-advancing drafts finalize in an hour."""
    invoice["auto_advance"] = auto_advance
    invoice["automatically_finalizes_at"] = at + FINALIZE_DELAY if auto_advance else None
    ctx.store.insert(invoice, customer=invoice["customer"], test_clock=invoice.get("test_clock"))
    save_invoice(ctx, invoice)
    ctx.emit("invoice.created", invoice)


def proration_invoice_item(
    ctx: Ctx,
    sub: dict[str, Any],
    line: ProrationLine,
    item_id: str | None,
    at: int,
    *,
    preview: bool = False,
) -> dict[str, Any]:
    """Build the invoice item of one proration line (stored and announced unless previewing)."""
    ii = new_invoice_item(
        ctx,
        sub["customer"],
        at=at,
        amount=line.amount,
        currency=sub["currency"],
        description=line.description,
        period=(line.period_start, line.period_end),
        quantity=line.quantity,
        price=line.price,
        proration=True,
        subscription_id=sub["id"],
        subscription_item_id=item_id,
        tax_rates=None,
        discountable=True,
        metadata={},
        preview=preview,
    )
    if not preview:
        ctx.store.insert(ii, customer=sub["customer"], test_clock=ii.get("test_clock"))
        ctx.emit("invoiceitem.created", ii)
    return ii
