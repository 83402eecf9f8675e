"""Small building blocks resource modules share: new objects, lookups, updates, deletes."""

from __future__ import annotations

from typing import Any

from .context import Ctx
from .errors import missing
from .ids import new_id
from .params import merge_metadata


def new_object(
    ctx: Ctx,
    prefix: str,
    obj_type: str,
    *,
    customer: str | None = None,
    clock_id: str | None = None,
    obj_id: str | None = None,
) -> dict[str, Any]:
    """Return the common head of a new object: id, object, created (on its clock), livemode."""
    return {
        "id": obj_id or new_id(prefix),
        "object": obj_type,
        "created": ctx.now(customer=customer, clock_id=clock_id),
        "livemode": False,
    }


def fetch(
    ctx: Ctx, obj_type: str, obj_id: str, *, kind: str | None = None, param: str | None = "id"
) -> dict:
    """Return a live object of this type or raise Stripe's 404 "No such <kind>"."""
    obj = ctx.store.get(obj_id, obj_type)
    if obj is None:
        raise missing(
            kind or obj_type.split(".")[-1].replace("_", " ").replace("test helpers ", ""),
            obj_id,
            param,
        )
    return obj


def insert(
    ctx: Ctx, obj: dict, *, customer: str | None = None, clock_id: str | None = None
) -> dict:
    """Store a new object; ``customer`` and ``clock_id`` feed the store's index columns."""
    if customer is None and isinstance(obj.get("customer"), str):
        customer = obj["customer"]
    return ctx.store.insert(obj, customer=customer, test_clock=clock_id)


def save(ctx: Ctx, obj: dict, **columns: Any) -> dict:
    """Persist changes to an existing object."""
    return ctx.store.save(obj, **columns)


def apply(obj: dict, params: dict[str, Any], fields: tuple[str, ...] | list[str]) -> None:
    """Copy the sent fields among ``fields`` onto the object (``None`` unsets)."""
    for field in fields:
        if field in params:
            obj[field] = params[field]


def apply_metadata(obj: dict, params: dict[str, Any]) -> None:
    """Merge ``params['metadata']`` into the object's metadata (``""`` values delete keys)."""
    obj["metadata"] = merge_metadata(
        obj.get("metadata"), params.get("metadata"), "metadata" in params
    )


def check_move(kind: str, allowed: dict[str, set[str]], current: str, status: str) -> None:
    """Refuse a status change the object's lifecycle does not have (staying put is allowed)."""
    if status != current and status not in allowed.get(current, set()):
        raise ValueError(f"{kind} cannot go from {current} to {status}")


def deleted_stub(obj: dict) -> dict:
    """Return the ``{id, object, deleted: true}`` body a DELETE answers with."""
    return {"id": obj["id"], "object": obj["object"], "deleted": True}


def update_and_emit(ctx: Ctx, obj: dict, before: dict, event_type: str, **kwargs: Any) -> dict:
    """Save an object and emit ``event_type`` with previous_attributes when anything changed."""
    save(ctx, obj, **kwargs)
    if obj != before:
        ctx.emit(event_type, obj, before=before)
    return obj
