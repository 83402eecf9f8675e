"""Customer tax ids under ``/v1/customers/{id}/tax_ids``."""

from __future__ import annotations

import re

from ..core.api import route
from ..core.context import Ctx
from ..core.errors import invalid, missing
from ..core.lists import paginate
from ..core.objects import deleted_stub, insert, new_object
from ..core.params import LIST_SPEC, Str, need

# Country and value shape for the tax id types portals commonly collect.
TYPES: dict[str, tuple[str | None, str]] = {
    "eu_vat": (None, r"[A-Z]{2}[0-9A-Z+*]{2,13}"),
    "gb_vat": ("GB", r"GB\d{9}(\d{3})?"),
    "us_ein": ("US", r"\d{2}-?\d{7}"),
    "au_abn": ("AU", r"\d{11}"),
    "ca_bn": ("CA", r"\d{9}"),
    "ch_vat": ("CH", r"CHE-?\d{3}\.?\d{3}\.?\d{3} ?(MWST|TVA|IVA)"),
    "no_vat": ("NO", r"\d{9}MVA"),
    "in_gst": ("IN", r"\d{2}[A-Z]{5}\d{4}[A-Z]\d[A-Z\d]{2}"),
    "jp_cn": ("JP", r"\d{13}"),
    "nz_gst": ("NZ", r"\d{8,9}"),
    "sg_gst": ("SG", r"[A-Z\d]{10}"),
    "za_vat": ("ZA", r"4\d{9}"),
    "br_cnpj": ("BR", r"\d{2}\.?\d{3}\.?\d{3}/?\d{4}-?\d{2}"),
    "mx_rfc": ("MX", r"[A-Z&Ñ]{3,4}\d{6}[A-Z\d]{3}"),
}
SPEC = {"type": Str(), "value": Str()}


def create(ctx: Ctx, customer_id: str, p: dict, param: str = "type") -> dict:
    """Validate and store a tax id for a customer, emitting customer.tax_id.created."""
    need(p, "type", "value")
    kind, value = p["type"], p["value"].strip()
    if kind not in TYPES:
        raise invalid(f"Invalid type: must be one of {', '.join(TYPES)}", param)
    country, pattern = TYPES[kind]
    if not re.fullmatch(pattern, value.upper().replace(" ", "")):
        raise invalid(f"Invalid value for {kind}.", "value", "tax_id_invalid")
    tax_id = new_object(ctx, "txi", "tax_id", customer=customer_id)
    tax_id.update(
        {
            "country": country or value[:2].upper().replace("EL", "GR"),
            "customer": customer_id,
            "customer_account": None,
            "owner": {"customer": customer_id, "type": "customer", "customer_account": None},
            "type": kind,
            "value": value,
            "verification": {
                "status": "pending" if kind == "eu_vat" else "unavailable",
                "verified_address": None,
                "verified_name": None,
            },
        }
    )
    insert(ctx, tax_id, customer=customer_id)
    ctx.emit("customer.tax_id.created", tax_id, customer=customer_id)
    return tax_id


def _customer(ctx: Ctx, customer_id: str) -> None:
    """Raise 404 unless the customer exists."""
    if ctx.store.get(customer_id, "customer") is None:
        raise missing("customer", customer_id)


def _tax_id(ctx: Ctx, customer_id: str, tax_id: str) -> dict:
    """Return a tax id belonging to the customer or raise 404."""
    _customer(ctx, customer_id)
    obj = ctx.store.get(tax_id, "tax_id")
    if obj is None or obj["customer"] != customer_id:
        raise missing("tax id", tax_id)
    return obj


@route("/v1/customers/<customer_id>/tax_ids", methods=["POST"])
def create_tax_id(ctx: Ctx, customer_id: str) -> dict:
    """Add a tax id to a customer."""
    p = ctx.validate(SPEC)
    _customer(ctx, customer_id)
    return create(ctx, customer_id, p)


@route("/v1/customers/<customer_id>/tax_ids/<tax_id>", methods=["GET"])
def retrieve_tax_id(ctx: Ctx, customer_id: str, tax_id: str) -> dict:
    """Retrieve one of a customer's tax ids."""
    ctx.validate({})
    return _tax_id(ctx, customer_id, tax_id)


@route("/v1/customers/<customer_id>/tax_ids/<tax_id>", methods=["DELETE"])
def delete_tax_id(ctx: Ctx, customer_id: str, tax_id: str) -> dict:
    """Delete a customer's tax id, emitting customer.tax_id.deleted."""
    ctx.validate({})
    obj = _tax_id(ctx, customer_id, tax_id)
    ctx.store.mark_deleted(tax_id)
    ctx.emit("customer.tax_id.deleted", obj, customer=customer_id)
    return deleted_stub(obj)


@route("/v1/customers/<customer_id>/tax_ids", methods=["GET"])
def list_tax_ids(ctx: Ctx, customer_id: str) -> dict:
    """List a customer's tax ids."""
    p = ctx.validate(LIST_SPEC)
    _customer(ctx, customer_id)
    return paginate(
        ctx.store,
        p,
        f"/v1/customers/{customer_id}/tax_ids",
        obj_type="tax_id",
        where="customer = ?",
        args=(customer_id,),
    )
