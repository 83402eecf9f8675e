"""Invoice items: the constructor of a one-off charge or proration line waiting for an invoice."""

from __future__ import annotations

from typing import Any

from ..core.context import Ctx
from ..core.ids import new_id
from . import catalog, pricing


def new_invoice_item(
    ctx: Ctx,
    customer_id: str,
    *,
    at: int,
    amount: int,
    currency: str,
    description: str | None,
    period: tuple[int, int],
    quantity: int | None,
    price: dict[str, Any] | None,
    proration: bool,
    subscription_id: str | None,
    subscription_item_id: str | None,
    tax_rates: list[dict[str, Any]] | None,
    discountable: bool,
    metadata: dict[str, str],
    preview: bool = False,
    unit_amount_decimal: str | None = None,
) -> dict[str, Any]:
    """Return a new pending invoice item (not stored)."""
    customer = ctx.store.get(customer_id, "customer", include_deleted=True) or {}
    if unit_amount_decimal is None and price is not None and quantity:
        unit_amount_decimal = pricing.unit_amount_decimal(catalog.price_terms(price), quantity)
    return {
        "id": new_id("ii_tmp" if preview else "ii"),
        "object": "invoiceitem",
        "amount": amount,
        "currency": currency,
        "customer": customer_id,
        "customer_account": None,
        "date": at,
        "description": description,
        "discountable": discountable,
        "discounts": [],
        "invoice": None,
        "livemode": False,
        "metadata": dict(metadata),
        "net_amount": amount,
        "parent": {
            "subscription_details": {
                "subscription": subscription_id,
                "subscription_item": subscription_item_id,
            },
            "type": "subscription_details",
        }
        if subscription_id
        else None,
        "period": {"end": period[1], "start": period[0]},
        "pricing": {
            "price_details": {"price": price["id"], "product": price.get("product")}
            if price
            else None,
            "type": "price_details",
            "unit_amount_decimal": unit_amount_decimal,
        },
        "proration": proration,
        "quantity": quantity,
        "quantity_decimal": str(quantity) if quantity is not None else None,
        "tax_rates": list(tax_rates or []),
        "test_clock": customer.get("test_clock"),
        "_subscription_item": subscription_item_id,
    }
