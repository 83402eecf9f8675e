"""Turn stored bodies into API output: hidden keys, computed fields and ``expand``.

Stored bodies may hold keys starting with ``_``; they never leave the sandbox, except that
``expand=["x"]`` on an object holding ``_x`` includes it as ``x`` (how Stripe's
"includable" fields such as ``price.tiers`` behave). A resource module may register a
renderer for its object type to fill computed fields (a charge's ``refunds`` list) at
output time.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from .errors import invalid
from .store import Store

Renderer = Callable[[Store, dict], dict]
_renderers: dict[str, Renderer] = {}


def renderer(obj_type: str) -> Callable[[Renderer], Renderer]:
    """Register a function that completes an object of ``obj_type`` for output."""

    def register(fn: Renderer) -> Renderer:
        _renderers[obj_type] = fn
        return fn

    return register


def render(store: Store, obj: Any) -> Any:
    """Return a deep copy of an object ready for output (hidden keys dropped, renderers run)."""
    if isinstance(obj, list):
        return [render(store, item) for item in obj]
    if not isinstance(obj, dict):
        return obj
    out = copy.deepcopy(obj)
    fn = _renderers.get(out.get("object", ""))
    if fn is not None and "deleted" not in out:
        out = fn(store, out)
    if out.get("object") in ("list", "search_result") and isinstance(out.get("data"), list):
        # A page holds stored bodies: each item goes through its own type's renderer.
        out["data"] = [render(store, item) for item in out["data"]]
    return _strip(out)


def _strip(value: Any) -> Any:
    """Drop ``_`` keys at every level."""
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if not k.startswith("_")}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def expand(store: Store, obj: dict, paths: list[str]) -> dict:
    """Render an object and replace ids at each dotted path by the objects they name."""
    raw = obj
    out = render(store, obj)
    for path in paths:
        if path.count(".") >= 4:
            raise invalid(
                f"You cannot expand more than 4 levels of a property. Property: {path}", "expand"
            )
        _expand_path(store, out, raw, path.split("."), path)
    return out


def _expand_path(store: Store, node: Any, raw: Any, segments: list[str], full: str) -> None:
    """Walk one expand path, loading objects for string ids along the way."""
    if isinstance(node, list):
        for i, item in enumerate(node):
            raw_item = raw[i] if isinstance(raw, list) and i < len(raw) else item
            _expand_path(store, item, raw_item, segments, full)
        return
    if not isinstance(node, dict):
        return
    head, rest = segments[0], segments[1:]
    raw_dict = raw if isinstance(raw, dict) else {}
    if head not in node:
        hidden = raw_dict.get("_" + head)
        if hidden is None and ("_" + head) not in raw_dict:
            raise invalid(f"This property cannot be expanded ({head}).", "expand")
        node[head] = render(store, hidden)
        raw_child: Any = hidden
    else:
        raw_child = raw_dict.get(head, node[head])
    value = node[head]
    if isinstance(value, str):
        loaded = store.get(value, include_deleted=True)
        if loaded is None:
            raise invalid(f"This property cannot be expanded ({head}).", "expand")
        node[head] = render(store, loaded)
        raw_child = loaded
    elif isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        # Lists of ids (e.g. ``default_tax_rates``) expand item by item.
        loaded_items = [store.get(v, include_deleted=True) for v in value]
        pairs = list(zip(loaded_items, value, strict=True))
        node[head] = [render(store, o) if o else v for o, v in pairs]
        raw_child = [o or v for o, v in pairs]
    if rest and node[head] is not None:
        _expand_path(store, node[head], raw_child, rest, full)
