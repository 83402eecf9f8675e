"""How a Stripe invoice's parts are kept in the mirror: lines, taxes by rate, the buyer.

Pure functions of Stripe's payload (plus what the caller looked up), used by services.sync.
"""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def _id(value: Any) -> str | None:
    """Return the id of a field that is either an id or an expanded object."""
    return value.get("id") if isinstance(value, dict) else value


def _time(value: int | None) -> datetime | None:
    """Return an aware UTC datetime for a unix timestamp."""
    return datetime.fromtimestamp(value, UTC) if value else None


def line_kind(line: dict, metered_prices: set[str]) -> str:
    """Return what a line bills: 'proration', 'metered', 'discount' (a credit) or 'plan'."""
    parent = line.get("parent") or {}
    details = (parent.get("subscription_item_details")
               or parent.get("invoice_item_details") or {})
    if details.get("proration") or line.get("proration"):
        return "proration"
    price = _id(((line.get("pricing") or {}).get("price_details") or {}).get("price"))
    if price and price in metered_prices:
        return "metered"
    if (line.get("amount") or 0) < 0:
        return "discount"
    if parent.get("invoice_item_details"):
        return "item"
    return "plan"


def invoice_lines(data: dict, metered_prices: set[str] = frozenset(),
                  lines: list[dict] | None = None) -> list[dict]:
    """Return the invoice lines in the shape the portal shows and prints."""
    source = lines if lines is not None else (data.get("lines") or {}).get("data") or []
    shaped = []
    for line in source:
        parent = line.get("parent") or {}
        details = (parent.get("subscription_item_details")
                   or parent.get("invoice_item_details") or {})
        pricing = line.get("pricing") or {}
        price_details = pricing.get("price_details") or {}
        period = line.get("period") or {}
        shaped.append({
            "id": line.get("id"),
            "description": line.get("description") or "",
            "amount": line.get("amount", 0),
            "currency": line.get("currency") or data.get("currency"),
            "quantity": line.get("quantity"),
            # The SDK hands *_decimal fields over as Decimal; JSON keeps them as text.
            "unit_amount_decimal": (str(pricing["unit_amount_decimal"])
                                    if pricing.get("unit_amount_decimal") is not None else None),
            "proration": bool(details.get("proration") or line.get("proration")),
            "kind": line_kind(line, metered_prices),
            "discount": sum(d.get("amount", 0) for d in line.get("discount_amounts") or []),
            "price": _id(price_details.get("price")) or _id(line.get("price")),
            "period_start": period.get("start"),
            "period_end": period.get("end"),
        })
    return shaped


def line_price_ids(data: dict, lines: list[dict] | None = None) -> set[str]:
    """Return the price ids an invoice's lines bill."""
    source = lines if lines is not None else (data.get("lines") or {}).get("data") or []
    ids = set()
    for line in source:
        price = _id(((line.get("pricing") or {}).get("price_details") or {}).get("price"))
        if price:
            ids.add(price)
    return ids


def tax_by_rate(data: dict, rates: dict[str, dict]) -> list[dict]:
    """Return the invoice's tax per rate, labelled from the tax rate objects given."""
    taxes = []
    for tax in data.get("total_taxes") or []:
        rate_id = ((tax.get("tax_rate_details") or {}).get("tax_rate"))
        rate = rates.get(_id(rate_id) or "", {})
        percentage = rate.get("percentage")
        label = rate.get("display_name") or "Tax"
        if percentage is not None:
            label = f"{label} {float(percentage):g}%"
        if tax.get("tax_behavior") == "inclusive":
            label += " (included)"
        taxes.append({"rate": _id(rate_id), "label": label, "amount": tax.get("amount", 0),
                      "taxable_amount": tax.get("taxable_amount", 0),
                      "inclusive": tax.get("tax_behavior") == "inclusive"})
    return taxes


def tax_rate_ids(data: dict) -> set[str]:
    """Return the tax rates an invoice's taxes name."""
    return {_id((tax.get("tax_rate_details") or {}).get("tax_rate"))
            for tax in data.get("total_taxes") or []} - {None}


def buyer_details(data: dict) -> dict:
    """Return the buyer as the invoice carries it (frozen by Stripe at finalization)."""
    return {
        "customer_name": data.get("customer_name"),
        "customer_email": data.get("customer_email"),
        "customer_address": data.get("customer_address"),
        "customer_tax_ids": [{"type": t.get("type"), "value": t.get("value")}
                             for t in data.get("customer_tax_ids") or []],
    }


def payment_times(data: dict) -> dict:
    """Return when the invoice was finalized and paid."""
    transitions = data.get("status_transitions") or {}
    return {"finalized_at": _time(transitions.get("finalized_at")),
            "paid_at": _time(transitions.get("paid_at"))}
