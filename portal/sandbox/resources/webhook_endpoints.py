"""``/v1/webhook_endpoints``: where events are delivered; the secret is shown once."""

from __future__ import annotations

from urllib.parse import urlparse

from ..core.api import route
from ..core.context import Ctx
from ..core.errors import invalid
from ..core.ids import random_token
from ..core.lists import paginate
from ..core.objects import apply, apply_metadata, deleted_stub, fetch, insert, new_object, save
from ..core.params import LIST_SPEC, Bool, List, Meta, Str, need
from ..core.version import API_VERSION
from ..objects import webhook_endpoints

UPDATE_SPEC = {
    "url": Str(),
    "enabled_events": List(Str()),
    "description": Str(),
    "metadata": Meta(),
    "disabled": Bool(),
}
CREATE_SPEC = {**UPDATE_SPEC, "api_version": Str(), "connect": Bool()}
CREATE_SPEC.pop("disabled")


def _check_url(url: str) -> str:
    """Accept only absolute http(s) URLs."""
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise invalid(
            f"Invalid URL: {url}. URLs must begin with http:// or https://", "url", "url_invalid"
        )
    return url


def _check_events(events: list[str]) -> list[str]:
    """Require at least one enabled event."""
    if not events:
        raise invalid("Missing required param: enabled_events.", "enabled_events")
    return events


def load(ctx: Ctx, obj_id: str) -> dict:
    """Return a webhook endpoint or raise 404."""
    return fetch(ctx, "webhook_endpoint", obj_id, kind="webhook endpoint")


@route("/v1/webhook_endpoints", methods=["POST"])
def create_endpoint(ctx: Ctx) -> dict:
    """Register an endpoint; the response alone carries its signing ``secret``."""
    p = ctx.validate(CREATE_SPEC)
    need(p, "url", "enabled_events")
    endpoint = new_object(ctx, "we", "webhook_endpoint")
    secret = f"whsec_{random_token(32)}"
    endpoint.update(
        {
            "api_version": p.get("api_version") or API_VERSION,
            "application": None,
            "description": p.get("description"),
            "enabled_events": _check_events(p["enabled_events"]),
            "metadata": {},
            "status": "enabled",
            "url": _check_url(p["url"]),
            "_secret": secret,
        }
    )
    apply_metadata(endpoint, p)
    insert(ctx, endpoint)
    return {**endpoint, "secret": secret}


@route("/v1/webhook_endpoints/<obj_id>", methods=["GET"])
def retrieve_endpoint(ctx: Ctx, obj_id: str) -> dict:
    """Retrieve an endpoint (without its secret)."""
    ctx.validate({})
    return load(ctx, obj_id)


@route("/v1/webhook_endpoints/<obj_id>", methods=["POST"])
def update_endpoint(ctx: Ctx, obj_id: str) -> dict:
    """Change url, events, description, metadata, or disable an endpoint."""
    p = ctx.validate(UPDATE_SPEC)
    endpoint = load(ctx, obj_id)
    if "url" in p:
        _check_url(p["url"] or "")
    if "enabled_events" in p:
        _check_events(p["enabled_events"])
    apply(endpoint, p, ("url", "enabled_events", "description"))
    apply_metadata(endpoint, p)
    if "disabled" in p:
        webhook_endpoints.transition(endpoint, "disabled" if p["disabled"] else "enabled")
    return save(ctx, endpoint)


@route("/v1/webhook_endpoints/<obj_id>", methods=["DELETE"])
def delete_endpoint(ctx: Ctx, obj_id: str) -> dict:
    """Delete an endpoint; pending deliveries to it are dropped."""
    ctx.validate({})
    endpoint = load(ctx, obj_id)
    ctx.store.mark_deleted(obj_id)
    ctx.store.conn.execute(
        "UPDATE webhook_deliveries SET status = 'failed', next_attempt_at = NULL,"
        " last_error = 'endpoint deleted' WHERE endpoint_id = ? AND status = 'pending'",
        (obj_id,),
    )
    return deleted_stub(endpoint)


@route("/v1/webhook_endpoints", methods=["GET"])
def list_endpoints(ctx: Ctx) -> dict:
    """List webhook endpoints."""
    p = ctx.validate(LIST_SPEC)
    return paginate(ctx.store, p, "/v1/webhook_endpoints", obj_type="webhook_endpoint")
