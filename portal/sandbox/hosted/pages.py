"""What every hosted page shares: a store transaction outside the API pipeline, money display."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import Response, current_app, make_response, request

from ..billing.money import format_amount
from ..core.context import Ctx
from ..core.errors import StripeError
from ..core.store import transaction
from ..core.webhooks import after_commit

T = TypeVar("T")


def run(work: Callable[[Ctx], T]) -> tuple[T | None, StripeError | None]:
    """Run ``work(ctx)`` in one transaction; return its result or the Stripe error it raised.

    Like the API pipeline, an error raised with ``commit=True`` (a declined card) keeps the
    attempt's records; any other error rolls the transaction back.
    """
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    result: T | None = None
    error: StripeError | None = None
    try:
        with transaction(app.config["SANDBOX_DB"]) as store:
            # Events caused by the customer on Stripe's pages carry no API request id.
            ctx = Ctx(
                store,
                {},
                config=app.config,
                script_root=request.script_root,
                url_root=request.url_root,
            )
            try:
                result = work(ctx)
            except StripeError as err:
                if not err.commit:
                    raise
                error = err
    except StripeError as err:
        return None, err
    if ctx.deliveries_queued:
        after_commit(app)
    return result, error


def money(amount: int | None, currency: str | None) -> str:
    """Format a minor-unit amount for people (ISO 4217 exponent: JPY 0, USD 2, KWD 3)."""
    if amount is None or not currency:
        return ""
    return format_amount(amount, currency)


def page(body: str, status: int = 200) -> Response:
    """Return an HTML response that no cache or frame-less context keeps around."""
    resp = make_response(body, status)
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["Referrer-Policy"] = "same-origin"
    return resp


def absolute(path_and_query: str) -> str:
    """Return an absolute URL under the sandbox root for a path relative to it."""
    return request.url_root + path_and_query.lstrip("/")


def context() -> dict[str, Any]:
    """Return values every hosted template uses."""
    return {"money": money}
