"""Sandbox-only endpoints under ``/v1/sandbox/faults``: inject failures into later API calls.

These do not exist at Stripe. ``POST /v1/sandbox/faults`` with ``method``, ``path`` (an
``fnmatch`` pattern such as ``/v1/subscriptions/*``), ``kind`` (``core.faults.KINDS``),
``count`` (how many matching requests it affects; default 1) and, for their kinds,
``latency_ms`` or ``hang_s``. ``GET`` lists the faults with their hits and what remains;
``DELETE`` removes them all. Refused (403) unless the sandbox runs with
``SANDBOX_FAULT_INJECTION``: the embedded sandbox of a portal is locked by default.
"""

from __future__ import annotations

from flask import current_app

from ..core.api import route
from ..core.context import Ctx
from ..core.errors import StripeError, required
from ..core.faults import KINDS, add_fault, clear_faults, get_faults
from ..core.lists import list_of
from ..core.params import Int, Num, Str
from ..core.store import connect

CREATE_SPEC = {"method": Str(), "path": Str(), "kind": Str(KINDS), "count": Int(minimum=1),
               "latency_ms": Int(minimum=0), "hang_s": Num()}
METHODS = ("GET", "POST", "DELETE", "*")


def _enabled() -> str:
    """Return the store path, or refuse when fault injection is off."""
    if not current_app.config.get("SANDBOX_FAULT_INJECTION"):
        raise StripeError("Fault injection is not enabled in this sandbox (it is a development "
                          "and test tool: set SANDBOX_FAULT_INJECTION to use it).", status=403)
    return current_app.config["SANDBOX_DB"]


@route("/v1/sandbox/faults", methods=["POST"], raw=True, transaction=False)
def create_fault(ctx: Ctx) -> dict:
    """Store a fault for the next `count` requests matching method and path."""
    db_path = _enabled()
    p = ctx.validate(CREATE_SPEC)
    for name in ("method", "path", "kind"):
        if not p.get(name):
            raise required(name)
    method = p["method"].upper()
    if method not in METHODS:
        raise StripeError(f"Invalid method: must be one of {', '.join(METHODS)}", param="method")
    if not p["path"].startswith("/v1/") or p["path"].startswith("/v1/sandbox/"):
        raise StripeError("Invalid path: faults apply to API paths under /v1/ (not /v1/sandbox/)",
                          param="path")
    conn = connect(db_path)
    try:
        return add_fault(conn, method, p["path"], p["kind"], p.get("count") or 1,
                         latency_ms=p.get("latency_ms") or 0, hang_s=float(p.get("hang_s") or 30))
    finally:
        conn.close()


@route("/v1/sandbox/faults", methods=["GET"], raw=True, transaction=False)
def list_faults(ctx: Ctx) -> dict:
    """List the faults, oldest first, with how often each struck and how many remain."""
    db_path = _enabled()
    ctx.validate({})
    conn = connect(db_path)
    try:
        return list_of(get_faults(conn), "/v1/sandbox/faults")
    finally:
        conn.close()


@route("/v1/sandbox/faults", methods=["DELETE"], raw=True, transaction=False)
def delete_faults(ctx: Ctx) -> dict:
    """Remove every fault."""
    db_path = _enabled()
    ctx.validate({})
    conn = connect(db_path)
    try:
        return {"object": "sandbox.faults_cleared", "deleted": clear_faults(conn)}
    finally:
        conn.close()
