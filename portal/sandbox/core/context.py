"""The per-transaction context handed to every resource handler.

A ``Ctx`` bundles the open ``Store`` (inside ``BEGIN IMMEDIATE``), the decoded request
parameters, the request id and idempotency key events record, and the clock. Code that
runs outside an HTTP request (a test clock advance, the billing engine on a timer, a
CLI task) gets the same object from ``background(app)``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask

from . import clock, events
from .params import validate
from .store import Store, transaction
from .webhooks import after_commit


class Ctx:
    """What a handler needs: store, params, request identity, clock and event emission."""

    def __init__(
        self,
        store: Store,
        params: dict[str, Any] | None = None,
        *,
        request_id: str | None = None,
        idempotency_key: str | None = None,
        config: dict[str, Any] | None = None,
        script_root: str = "",
        api_key: str | None = None,
        url_root: str = "/",
    ) -> None:
        self.store = store
        self.params = params or {}
        self.request_id = request_id
        self.idempotency_key = idempotency_key
        self.config = config or {}
        self.script_root = script_root
        self.api_key = api_key
        # Absolute base URL of the sandbox app (scheme, host and mount prefix), for hosted pages.
        self.url_root = url_root
        self.deliveries_queued = False

    def validate(self, spec: dict[str, Any]) -> dict[str, Any]:
        """Validate this request's params against a spec (see ``core.params``) and return them."""
        return validate(self.params, spec)

    def now(self, customer: str | None = None, clock_id: str | None = None) -> int:
        """Return "now" for a customer or test clock (frozen time), else wall time."""
        return clock.now_for(self.store, customer=customer, clock=clock_id)

    def wall_now(self) -> int:
        """Return real time, used for webhook scheduling which never follows test clocks."""
        return clock.wall_time()

    def emit(self, event_type: str, obj: dict, **kwargs: Any) -> dict:
        """Record an event (see ``core.events.emit``) and return it."""
        return events.emit(self, event_type, obj, **kwargs)

    @property
    def publishable(self) -> bool:
        """Tell whether the caller authenticated with a publishable (browser) key."""
        return bool(self.api_key and self.api_key.startswith("pk_"))


@contextmanager
def background(app: Flask, *, request_id: str | None = None) -> Iterator[Ctx]:
    """Yield a Ctx in its own transaction for work outside an API request (no request id)."""
    with transaction(app.config["SANDBOX_DB"]) as store:
        ctx = Ctx(store, request_id=request_id, config=app.config)
        yield ctx
    if ctx.deliveries_queued:
        after_commit(app)
