"""Route registry and the request pipeline every API call goes through.

A resource module declares endpoints with ``@route``::

    @route("/v1/customers/<obj_id>", methods=["POST"])
    def update_customer(ctx: Ctx, obj_id: str) -> dict:
        p = ctx.validate(UPDATE_SPEC)
        ...
        return customer            # the stored dict; rendering/expand happen here

The pipeline: Request-Id, authentication (any ``sk_test_`` key, or only the pair in
``SANDBOX_API_KEYS`` when set; ``pk_test_`` only on routes marked ``publishable``),
parameter decoding, ``BEGIN IMMEDIATE``, idempotent
replay (``core.idempotency``), the handler, ``expand``, the idempotency record, COMMIT,
then inline webhook delivery when configured. A ``StripeError`` becomes Stripe's error
body; with ``commit=True`` the transaction still commits.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Flask, Response, current_app, request

from . import idempotency
from .context import Ctx
from .errors import StripeError, auth_error
from .ids import new_id
from .params import EXPAND, decode
from .render import expand
from .store import Store, transaction
from .version import API_VERSION
from .webhooks import after_commit

Handler = Callable[..., Any]


@dataclass
class Route:
    """One registered endpoint."""

    rule: str
    methods: tuple[str, ...]
    handler: Handler
    publishable: bool
    raw: bool
    transaction: bool


ROUTES: list[Route] = []
REQUEST_HOOKS: list[Callable[[Ctx], None]] = []


def before_handler(fn: Callable[[Ctx], None]) -> Callable[[Ctx], None]:
    """Register ``fn(ctx)``, run in each API transaction before the handler (due billing work)."""
    REQUEST_HOOKS.append(fn)
    return fn


def route(
    rule: str,
    methods: list[str] | tuple[str, ...] = ("GET",),
    *,
    publishable: bool = False,
    raw: bool = False,
    transaction: bool = True,
) -> Callable[[Handler], Handler]:
    """Register a handler ``fn(ctx, **url_args)`` returning an object dict (or ``(dict, status)``).

    ``publishable`` also admits ``pk_test_`` keys (calls Stripe.js makes from the browser).
    ``raw`` returns the handler's value untouched (no render/expand), for sandbox-only
    debugging endpoints. ``transaction=False`` calls the handler with ``ctx.store`` set to
    None and no idempotency handling, for endpoints that manage their own transactions.
    """

    def register(fn: Handler) -> Handler:
        ROUTES.append(
            Route(rule, tuple(m.upper() for m in methods), fn, publishable, raw, transaction)
        )
        return fn

    return register


def install(app: Flask) -> None:
    """Add every registered route to a Flask app."""
    for entry in ROUTES:
        endpoint = f"api.{entry.handler.__module__}.{entry.handler.__name__}"
        if endpoint in app.view_functions:
            continue
        app.add_url_rule(entry.rule, endpoint, _view(entry), methods=list(entry.methods))


def _view(entry: Route) -> Callable[..., Response]:
    """Wrap a handler in the request pipeline."""

    def view(**kwargs: Any) -> Response:
        return dispatch(entry, kwargs)

    view.__name__ = entry.handler.__name__
    return view


def json_response(body: Any, status: int, request_id: str, extra: dict | None = None) -> Response:
    """Build a JSON response carrying Stripe's headers."""
    resp = Response(json.dumps(body, indent=2), status=status, mimetype="application/json")
    resp.headers["Request-Id"] = request_id
    resp.headers["Stripe-Version"] = request.headers.get("Stripe-Version") or API_VERSION
    for key, value in (extra or {}).items():
        resp.headers[key] = value
    return resp


def error_response(err: StripeError, request_id: str) -> Response:
    """Render a StripeError."""
    return json_response(err.to_dict(request_id), err.status, request_id, err.headers)


def authenticate(publishable: bool) -> str:
    """Return the API key of the request or raise Stripe's 401."""
    header = request.headers.get("Authorization", "")
    key = ""
    if header.lower().startswith("bearer "):
        key = header[7:].strip()
    elif request.authorization and request.authorization.username:
        key = request.authorization.username
    if not key:
        raise auth_error(
            "You did not provide an API key. You need to provide your API key in the "
            "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer "
            "YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for details, "
            "or we can help at https://support.stripe.com/."
        )
    allowed = ("sk_test_", "rk_test_") + (("pk_test_",) if publishable else ())
    if not key.startswith(allowed) or len(key) <= 8:
        if key.startswith("pk_test_"):
            raise auth_error(
                "This API call cannot be made with a publishable API key. Please use a secret "
                "API key. You can find a list of your API keys at https://dashboard.stripe.com/account/apikeys."
            )
        raise auth_error(f"Invalid API Key provided: {_masked(key)}")
    accepted = current_app.config.get("SANDBOX_API_KEYS")
    if accepted is not None:
        # Locked to one portal: only the key pair it generated opens this sandbox.
        allowed_keys = {accepted["secret"]} | ({accepted["publishable"]} if publishable else set())
        if key not in allowed_keys:
            raise auth_error(f"Invalid API Key provided: {_masked(key)}")
    return key


def _masked(key: str) -> str:
    """Return a key as Stripe quotes it in errors: the start and end, the middle starred."""
    return key[:8] + "*" * 4 + key[-4:] if len(key) > 12 else key


def request_params() -> dict[str, Any]:
    """Decode query string and form body parameters into nested values."""
    pairs = list(request.args.items(multi=True))
    if request.method in ("POST", "DELETE"):
        pairs += list(request.form.items(multi=True))
    return decode(pairs)


def _context(
    store: Store | None, params: dict[str, Any], request_id: str, key: str, idem_key: str | None
) -> Ctx:
    """Build the handler's context from the current request."""
    return Ctx(
        store,  # type: ignore[arg-type]  - None for handlers that open their own transactions
        params,
        request_id=request_id,
        idempotency_key=idem_key,
        config=current_app.config,
        script_root=request.script_root,
        api_key=key,
        url_root=request.url_root,
    )


def dispatch(entry: Route, url_args: dict[str, Any]) -> Response:
    """Run one API request through the pipeline and return its response."""
    request_id = new_id("req", 14)
    app = current_app
    try:
        key = authenticate(entry.publishable)
        params = request_params()
        expand_paths = EXPAND.coerce(params.pop("expand"), "expand") if "expand" in params else []
        idem_key = idempotency.check_key(
            request.headers.get("Idempotency-Key") if request.method == "POST" else None
        )
        if not entry.transaction:
            ctx = _context(None, params, request_id, key, None)
            return json_response(entry.handler(ctx, **url_args), 200, request_id)
        print_ = idempotency.fingerprint(
            request.method, request.path, {"p": params, "e": expand_paths}
        )
        with transaction(app.config["SANDBOX_DB"]) as store:
            kept = idempotency.stored_response(store, idem_key, print_) if idem_key else None
            if kept is not None:
                status, body = kept
                return json_response(body, status, request_id, {"Idempotent-Replayed": "true"})
            ctx = _context(store, params, request_id, key, idem_key)
            for hook in REQUEST_HOOKS:
                hook(ctx)
            status, body, headers = _run(ctx, entry, url_args, expand_paths, request_id)
            if idem_key and idempotency.worth_keeping(status):
                idempotency.keep_response(store, idem_key, print_, status, body)
        # Every request gives due retries a chance in inline mode, not only those queuing events.
        after_commit(app)
        return json_response(body, status, request_id, headers)
    except StripeError as err:
        return error_response(err, request_id)


def _run(
    ctx: Ctx, entry: Route, url_args: dict, expand_paths: list[str], request_id: str
) -> tuple[int, Any, dict]:
    """Call the handler; turn a committing StripeError into a response body."""
    try:
        result = entry.handler(ctx, **url_args)
    except StripeError as err:
        if not err.commit:
            raise
        return err.status, err.to_dict(request_id), err.headers
    status = 200
    if isinstance(result, tuple):
        result, status = result
    body = result if entry.raw else expand(ctx.store, result, expand_paths)
    return status, body, {}
