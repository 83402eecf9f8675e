"""Build invoices: the invoice head, its lines, and totals recomputed from the lines.

Lines live inside the stored invoice under the hidden ``_lines`` key (so they keep their
order and page in memory); the ``lines`` list object is filled in at output time.  Each
line may carry hidden ``_tax_rates`` (ids; None means the invoice's default_tax_rates).
"""

from __future__ import annotations

from typing import Any

from ..core.context import Ctx
from ..core.errors import invalid
from ..core.ids import new_id
from ..core.store import Store
from . import catalog, pricing, totals

LINES_PAGE = 10


def customer_details(store: Store, customer: dict[str, Any]) -> dict[str, Any]:
    """Return the invoice's copy of the customer's name, address, email and tax ids.

    Stripe keeps these equal to the customer's until the invoice is finalized, then freezes
    them (https://docs.stripe.com/api/invoices/object#invoice_object-customer_tax_ids).
    """
    tax_ids = store.select("tax_id", "customer = ?", (customer.get("id"),),
                           order="created, seq") if customer.get("id") else []
    return {
        "customer_address": customer.get("address"),
        "customer_email": customer.get("email"),
        "customer_name": customer.get("name"),
        "customer_phone": customer.get("phone"),
        "customer_shipping": customer.get("shipping"),
        "customer_tax_exempt": customer.get("tax_exempt") or "none",
        "customer_tax_ids": [{"type": t["type"], "value": t["value"]} for t in tax_ids],
    }


def new_invoice(
    ctx: Ctx,
    customer: dict[str, Any],
    *,
    at: int,
    billing_reason: str,
    currency: str,
    subscription: dict[str, Any] | None = None,
    period: tuple[int, int] | None = None,
    auto_advance: bool = False,
    collection_method: str = "charge_automatically",
    days_until_due: int | None = None,
    default_tax_rates: list[dict[str, Any]] | None = None,
    discounts: list[str] | None = None,
    description: str | None = None,
    metadata: dict[str, str] | None = None,
    default_payment_method: str | None = None,
    invoice_id: str | None = None,
) -> dict[str, Any]:
    """Return a new draft invoice for a customer (not stored), with no lines yet."""
    invoice_id = invoice_id or new_id("in")
    period_start, period_end = period or (at, at)
    parent = None
    if subscription is not None:
        parent = {
            "quote_details": None,
            "subscription_details": {
                "metadata": dict(subscription.get("metadata") or {}),
                "subscription": subscription["id"],
            },
            "type": "subscription_details",
        }
    due_date = at + days_until_due * 86_400 if collection_method == "send_invoice" else None
    return {
        "id": invoice_id,
        "object": "invoice",
        "account_country": "US",
        "account_name": "Sandbox",
        "account_tax_ids": None,
        "amount_due": 0,
        "amount_overpaid": 0,
        "amount_paid": 0,
        "amount_remaining": 0,
        "amount_shipping": 0,
        "application": None,
        "attempt_count": 0,
        "attempted": False,
        "auto_advance": auto_advance,
        "automatic_tax": {
            "enabled": False,
            "liability": None,
            "status": None,
            "disabled_reason": None,
            "provider": None,
        },
        "automatically_finalizes_at": None,
        "billing_reason": billing_reason,
        "collection_method": collection_method,
        "created": at,
        "currency": currency,
        "custom_fields": None,
        "customer": customer["id"],
        "customer_account": None,
        **customer_details(ctx.store, customer),
        "default_payment_method": default_payment_method,
        "default_source": None,
        "default_tax_rates": list(default_tax_rates or []),
        "description": description,
        "discounts": list(discounts or []),
        "due_date": due_date,
        "effective_at": None,
        "ending_balance": None,
        "footer": None,
        "from_invoice": None,
        "hosted_invoice_url": None,
        "invoice_pdf": None,
        "issuer": {"type": "self"},
        "last_finalization_error": None,
        "latest_revision": None,
        "livemode": False,
        "metadata": dict(metadata or {}),
        "next_payment_attempt": None,
        "number": None,
        "on_behalf_of": None,
        "parent": parent,
        "payment_settings": {
            "default_mandate": None,
            "payment_method_options": None,
            "payment_method_types": None,
        },
        "period_end": period_end,
        "period_start": period_start,
        "post_payment_credit_notes_amount": 0,
        "pre_payment_credit_notes_amount": 0,
        "receipt_number": None,
        "rendering": None,
        "shipping_cost": None,
        "shipping_details": None,
        "starting_balance": 0,
        "statement_descriptor": None,
        "status": "draft",
        "status_transitions": {
            "finalized_at": None,
            "marked_uncollectible_at": None,
            "paid_at": None,
            "voided_at": None,
        },
        "subscription": subscription["id"] if subscription else None,
        "subtotal": 0,
        "subtotal_excluding_tax": 0,
        "test_clock": customer.get("test_clock"),
        "total": 0,
        "total_discount_amounts": [],
        "total_excluding_tax": 0,
        "total_pretax_credit_amounts": [],
        "total_taxes": [],
        "webhooks_delivered_at": None,
        "_lines": [],
    }


def _line(
    invoice: dict[str, Any],
    *,
    amount: int,
    description: str,
    period: tuple[int, int],
    quantity: int | None,
    price: dict[str, Any] | None,
    parent: dict[str, Any],
    discountable: bool = True,
    tax_rate_ids: list[str] | None = None,
    unit_amount_decimal: str | None = None,
    metadata: dict[str, str] | None = None,
    temporary: bool = False,
) -> dict[str, Any]:
    pricing_detail = {
        "price_details": {"price": price["id"], "product": price.get("product")} if price else None,
        "type": "price_details",
        "unit_amount_decimal": unit_amount_decimal,
    }
    return {
        "id": new_id("il_tmp" if temporary else "il"),
        "object": "line_item",
        "amount": amount,
        "currency": invoice["currency"],
        "description": description,
        "discount_amounts": [],
        "discountable": discountable,
        "discounts": [],
        "invoice": invoice["id"],
        "livemode": False,
        "metadata": dict(metadata or {}),
        "parent": parent,
        "period": {"end": period[1], "start": period[0]},
        "pretax_credit_amounts": [],
        "pricing": pricing_detail,
        "quantity": quantity,
        "quantity_decimal": str(quantity) if quantity is not None else None,
        "subscription": invoice.get("subscription"),
        "subtotal": amount,
        "taxes": [],
        "_tax_rates": tax_rate_ids,
    }


def add_subscription_item_line(
    store: Store,
    invoice: dict[str, Any],
    item: dict[str, Any],
    price: dict[str, Any],
    quantity: int,
    period: tuple[int, int],
    *,
    trial: bool = False,
    temporary: bool = False,
) -> dict[str, Any]:
    """Append the line billing one subscription item for a period (in advance, or usage)."""
    terms = catalog.price_terms(price)
    name = catalog.product_name(store, price)
    amount = 0 if trial else pricing.amount_for_quantity(terms, quantity)
    if trial:
        description = f"Trial period for {name}"
    else:
        description = f"{quantity} × {name} (at {catalog.price_label(price)})"
    line = _line(
        invoice,
        amount=amount,
        description=description,
        period=period,
        quantity=quantity,
        price=price,
        unit_amount_decimal=pricing.unit_amount_decimal(terms, quantity),
        tax_rate_ids=_ids(item.get("tax_rates")) or None,
        temporary=temporary,
        parent={
            "invoice_item_details": None,
            "subscription_item_details": {
                "invoice_item": None,
                "proration": False,
                "proration_details": {"credited_items": None},
                "subscription": item["subscription"],
                "subscription_item": item["id"],
            },
            "type": "subscription_item_details",
        },
    )
    invoice["_lines"].append(line)
    return line


def metered_line_terms(store: Store, price: dict[str, Any], quantity: int) -> dict[str, Any]:
    """Return amount, quantity, description and unit amount of a usage line for a quantity."""
    terms = catalog.price_terms(price)
    name = catalog.product_name(store, price)
    return {
        "amount": pricing.amount_for_quantity(terms, quantity),
        "quantity": quantity,
        "description": f"{quantity} × {name} (at {catalog.price_label(price)})",
        "unit_amount_decimal": pricing.unit_amount_decimal(terms, quantity),
    }


def add_invoice_item_line(
    invoice: dict[str, Any], ii: dict[str, Any], *, temporary: bool = False
) -> dict[str, Any]:
    """Append the line for an invoice item (a proration or a one-off charge)."""
    sub_item = ii.get("_subscription_item")
    subscription = (ii.get("parent") or {}).get("subscription_details", {}) or {}
    sub_id = subscription.get("subscription")
    if sub_item:
        parent = {
            "invoice_item_details": None,
            "subscription_item_details": {
                "invoice_item": ii["id"],
                "proration": ii["proration"],
                "proration_details": {"credited_items": None},
                "subscription": sub_id,
                "subscription_item": sub_item,
            },
            "type": "subscription_item_details",
        }
    else:
        parent = {
            "invoice_item_details": {
                "invoice_item": ii["id"],
                "proration": ii["proration"],
                "proration_details": {"credited_items": None},
                "subscription": sub_id,
            },
            "subscription_item_details": None,
            "type": "invoice_item_details",
        }
    price_id = (ii.get("pricing") or {}).get("price_details", {}) or {}
    line = _line(
        invoice,
        amount=ii["amount"],
        description=ii.get("description") or "",
        period=(ii["period"]["start"], ii["period"]["end"]),
        quantity=ii.get("quantity"),
        price={"id": price_id.get("price"), "product": price_id.get("product")}
        if price_id.get("price")
        else None,
        parent=parent,
        discountable=ii.get("discountable", True),
        tax_rate_ids=_ids(ii.get("tax_rates")) or None,
        unit_amount_decimal=(ii.get("pricing") or {}).get("unit_amount_decimal"),
        metadata=ii.get("metadata"),
        temporary=temporary,
    )
    invoice["_lines"].append(line)
    return line


def _ids(refs: list[Any] | None) -> list[str]:
    return [r["id"] if isinstance(r, dict) else r for r in refs or []]


def discount_inputs(store: Store, discount_ids: list[str]) -> list[totals.DiscountInput]:
    """Return the math inputs of discount objects: their ids and coupons."""
    inputs = []
    for discount_id in discount_ids:
        discount = store.get(discount_id, "discount", include_deleted=True)
        if discount is None:
            continue
        coupon_id = (discount.get("source") or {}).get("coupon")
        coupon = store.get(coupon_id or "", "coupon", include_deleted=True)
        if coupon is not None:
            inputs.append(totals.DiscountInput(discount_id, coupon))
    return inputs


def recompute(store: Store, invoice: dict[str, Any]) -> dict[str, Any]:
    """Recompute discounts, taxes and totals of an invoice from its lines."""
    lines = invoice["_lines"]
    defaults = invoice.get("default_tax_rates") or []
    inputs = [
        totals.LineInput(
            amount=line["amount"],
            discountable=line["discountable"],
            tax_rates=catalog.tax_rates(
                store, line["_tax_rates"] if line.get("_tax_rates") else defaults
            ),
            credits=sum(c["amount"] for c in line.get("pretax_credit_amounts") or []),
        )
        for line in lines
    ]
    result = totals.compute_totals(inputs, discount_inputs(store, invoice.get("discounts") or []))
    for line, line_totals in zip(lines, result.lines, strict=True):
        line["discount_amounts"] = line_totals.discount_amounts
        line["taxes"] = line_totals.taxes
    invoice.update(
        subtotal=result.subtotal,
        subtotal_excluding_tax=result.subtotal_excluding_tax,
        total=result.total,
        total_excluding_tax=result.total_excluding_tax,
        total_discount_amounts=result.total_discount_amounts,
        total_taxes=result.total_taxes,
    )
    if invoice["status"] == "draft":
        invoice["amount_due"] = max(result.total, 0)
        invoice["amount_remaining"] = invoice["amount_due"] - invoice["amount_paid"]
    return invoice


def apply_balance_preview(store: Store, invoice: dict[str, Any]) -> dict[str, Any]:
    """Show on a preview how the customer's balance would apply when it is finalized.

    docs.stripe.com/billing/customer/balance: the balance applies to the next finalized
    invoice, so a preview's starting_balance and amount_due already count it.
    """
    customer = store.get(invoice["customer"], "customer", include_deleted=True) or {}
    balance = int(customer.get("balance") or 0)
    invoice["starting_balance"] = balance
    invoice["amount_due"] = max(invoice["total"] + balance, 0)
    invoice["amount_remaining"] = invoice["amount_due"]
    invoice["ending_balance"] = min(invoice["total"] + balance, 0)
    return invoice


def lines_page(invoice: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """Return a page of an invoice's lines as a Stripe list object (cursor = line id)."""
    lines = invoice.get("_lines") or []
    limit = params.get("limit") or LINES_PAGE
    if not 1 <= limit <= 100:
        raise invalid("Invalid limit: must be between 1 and 100", "limit")
    ids = [line["id"] for line in lines]
    start, end = 0, len(lines)
    if params.get("starting_after"):
        if params["starting_after"] not in ids:
            raise invalid(f"No such line item: '{params['starting_after']}'", "starting_after")
        start = ids.index(params["starting_after"]) + 1
    if params.get("ending_before"):
        if params["ending_before"] not in ids:
            raise invalid(f"No such line item: '{params['ending_before']}'", "ending_before")
        end = ids.index(params["ending_before"])
        start = max(0, end - limit)
    page = lines[start : min(start + limit, end)]
    return {
        "object": "list",
        "data": page,
        "has_more": start + limit < end,
        "url": f"/v1/invoices/{invoice['id']}/lines",
    }
