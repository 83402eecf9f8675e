"""Customers: create, retrieve, update, delete, list and search."""

from __future__ import annotations

from ..core.api import route
from ..core.context import Ctx
from ..core.errors import invalid
from ..core.ids import random_token
from ..core.lists import equals, field, filtered, paginate, search
from ..core.objects import apply, apply_metadata, deleted_stub, fetch, insert, new_object, save
from ..core.params import LIST_SPEC, Int, List, Meta, Str
from ..objects.payment_methods import attach
from . import tax_ids

ADDRESS = {k: Str() for k in ("city", "country", "line1", "line2", "postal_code", "state")}
SHIPPING = {"address": ADDRESS, "name": Str(), "phone": Str()}
INVOICE_SETTINGS = {
    "custom_fields": List({"name": Str(), "value": Str()}),
    "default_payment_method": Str(),
    "footer": Str(),
    "rendering_options": {"amount_tax_display": Str(), "template": Str()},
}
UPDATE_SPEC = {
    "address": ADDRESS,
    "balance": Int(),
    "description": Str(),
    "email": Str(),
    "invoice_prefix": Str(),
    "invoice_settings": INVOICE_SETTINGS,
    "metadata": Meta(),
    "name": Str(),
    "next_invoice_sequence": Int(minimum=1),
    "phone": Str(),
    "preferred_locales": List(Str()),
    "shipping": SHIPPING,
    "tax_exempt": Str(("none", "exempt", "reverse")),
}
CREATE_SPEC = {
    **UPDATE_SPEC,
    "payment_method": Str(),
    "test_clock": Str(),
    "tax_id_data": List({"type": Str(), "value": Str()}),
}
EMPTY_ADDRESS = {k: None for k in ADDRESS}


def _check_default_payment_method(ctx: Ctx, customer_id: str, pm_id: str | None) -> None:
    """Refuse a default payment method that is not attached to this customer."""
    if pm_id is None:
        return
    pm = ctx.store.get(pm_id, "payment_method")
    if pm is None or pm.get("customer") != customer_id:
        raise invalid(
            f"No such PaymentMethod: '{pm_id}'; The customer does not have a payment method "
            f"with the ID {pm_id}. The payment method must be attached to the customer.",
            "invoice_settings[default_payment_method]",
            "resource_missing",
        )


def _apply_settings(customer: dict, p: dict) -> None:
    """Copy updatable fields, merging nested invoice_settings and address like Stripe does."""
    apply(
        customer,
        p,
        (
            "balance",
            "description",
            "email",
            "name",
            "phone",
            "tax_exempt",
            "invoice_prefix",
            "next_invoice_sequence",
        ),
    )
    if "address" in p:
        customer["address"] = {**EMPTY_ADDRESS, **(p["address"] or {})} if p["address"] else None
    if "shipping" in p:
        ship = p["shipping"]
        customer["shipping"] = (
            None
            if ship is None
            else {
                "address": {**EMPTY_ADDRESS, **(ship.get("address") or {})},
                "name": ship.get("name"),
                "phone": ship.get("phone"),
            }
        )
    if "preferred_locales" in p:
        customer["preferred_locales"] = p["preferred_locales"]
    if "invoice_settings" in p:
        settings = dict(customer["invoice_settings"])
        for key, value in (p["invoice_settings"] or {}).items():
            if key == "rendering_options":
                settings[key] = {"amount_tax_display": None, "template": None, **(value or {})}
            else:
                settings[key] = value
        customer["invoice_settings"] = settings
    apply_metadata(customer, p)


@route("/v1/customers", methods=["POST"])
def create_customer(ctx: Ctx) -> dict:
    """Create a customer, optionally on a test clock and with a payment method attached."""
    p = ctx.validate(CREATE_SPEC)
    clock_id = p.get("test_clock")
    if clock_id:
        fetch(ctx, "test_helpers.test_clock", clock_id, kind="test clock", param="test_clock")
    customer = new_object(ctx, "cus", "customer", clock_id=clock_id)
    customer.update(
        {
            "address": None,
            "balance": 0,
            "currency": None,
            "default_source": None,
            "delinquent": False,
            "description": None,
            "discount": None,
            "email": None,
            "invoice_prefix": random_token(8).upper(),
            "invoice_settings": {
                "custom_fields": None,
                "default_payment_method": None,
                "footer": None,
                "rendering_options": None,
            },
            "metadata": {},
            "name": None,
            "next_invoice_sequence": 1,
            "phone": None,
            "preferred_locales": [],
            "shipping": None,
            "tax_exempt": "none",
            "test_clock": clock_id,
        }
    )
    _apply_settings(customer, {k: v for k, v in p.items() if k != "invoice_settings"})
    insert(ctx, customer, customer=customer["id"], clock_id=clock_id)
    # The payment method is attached before the default is checked, as Stripe allows
    # `payment_method` and `invoice_settings[default_payment_method]` in one create call.
    if p.get("payment_method"):
        attach(ctx, p["payment_method"], customer["id"], param="payment_method")
    if p.get("invoice_settings"):
        _check_default_payment_method(
            ctx, customer["id"], p["invoice_settings"].get("default_payment_method")
        )
        _apply_settings(customer, {"invoice_settings": p["invoice_settings"]})
        save(ctx, customer)
    ctx.emit("customer.created", customer)
    for item in p.get("tax_id_data") or []:
        tax_ids.create(ctx, customer["id"], item, param="tax_id_data")
    return customer


def load_customer(ctx: Ctx, customer_id: str, param: str | None = "id") -> dict:
    """Return a live customer or raise 404 "No such customer"."""
    return fetch(ctx, "customer", customer_id, kind="customer", param=param)


@route("/v1/customers/<obj_id>", methods=["GET"])
def retrieve_customer(ctx: Ctx, obj_id: str) -> dict:
    """Retrieve a customer; a deleted one answers with its deleted stub."""
    ctx.validate({})
    if ctx.store.is_deleted(obj_id):
        customer = ctx.store.get(obj_id, "customer", include_deleted=True)
        if customer is not None:
            return deleted_stub(customer)
    return load_customer(ctx, obj_id)


@route("/v1/customers/<obj_id>", methods=["POST"])
def update_customer(ctx: Ctx, obj_id: str) -> dict:
    """Update a customer's fields; metadata merges."""
    p = ctx.validate(UPDATE_SPEC)
    customer = load_customer(ctx, obj_id)
    before = {**customer, "invoice_settings": dict(customer["invoice_settings"])}
    if "invoice_settings" in p and p["invoice_settings"]:
        _check_default_payment_method(
            ctx, obj_id, p["invoice_settings"].get("default_payment_method")
        )
    _apply_settings(customer, p)
    save(ctx, customer)
    if customer != before:
        ctx.emit("customer.updated", customer, before=before)
    return customer


@route("/v1/customers/<obj_id>", methods=["DELETE"])
def delete_customer(ctx: Ctx, obj_id: str) -> dict:
    """Delete a customer; its payment methods are detached."""
    ctx.validate({})
    customer = load_customer(ctx, obj_id)
    for pm in ctx.store.select("payment_method", "json_extract(body, '$.customer') = ?", (obj_id,)):
        pm["customer"] = None
        save(ctx, pm, customer=None)
    ctx.store.mark_deleted(obj_id)
    ctx.emit("customer.deleted", customer)
    return deleted_stub(customer)


@route("/v1/customers", methods=["GET"])
def list_customers(ctx: Ctx) -> dict:
    """List customers, newest first, filtered by email or test clock."""
    p = ctx.validate({**LIST_SPEC, "email": Str(), "test_clock": Str()})
    filters = {"email": equals(field("email")), "test_clock": equals("test_clock")}
    return paginate(ctx.store, p, "/v1/customers", obj_type="customer", **filtered(p, filters))


@route("/v1/customers/search", methods=["GET"])
def search_customers(ctx: Ctx) -> dict:
    """Search customers by email, name, phone, created and metadata."""
    p = ctx.validate({"query": Str(), "limit": Int(), "page": Str()})
    fields = {
        k: (lambda o, k=k: o.get(k)) for k in ("email", "name", "phone", "created", "description")
    }
    return search(ctx.store, "customer", p, "/v1/customers/search", fields)
