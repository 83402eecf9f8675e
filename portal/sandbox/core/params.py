"""Request parameters: decode Stripe's bracketed form encoding and validate against a spec.

The official SDKs send ``items[0][price]=p``, ``metadata[k]=v``, ``expand[0]=x`` (or
``expand[]=x``) both in form bodies and GET query strings. ``decode`` turns those pairs
into nested dicts and lists of strings; ``validate`` checks them against a spec built from
the small type classes below, coerces values, and raises Stripe's errors
("Received unknown parameter: x", "Invalid integer: abc", ...).

A spec is a dict ``{name: type}``. Only parameters that were sent appear in the result;
an empty string on a nullable field yields ``None`` (Stripe's way of unsetting a value).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from flask import current_app

from .errors import invalid, required, unknown_param

_SEGMENT = re.compile(r"\[([^\[\]]*)\]")


def decode(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Decode ``(key, value)`` pairs with bracketed keys into nested dicts and lists."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        head = key.split("[", 1)[0]
        path = [head, *_SEGMENT.findall(key[len(head) :])]
        node = root
        for i, segment in enumerate(path):
            last = i == len(path) - 1
            if segment == "":
                # "expand[]=a&expand[]=b": number the entries in arrival order.
                segment = str(sum(1 for k in node if k.isdigit()))
            if last:
                node[segment] = value
            else:
                child = node.get(segment)
                if not isinstance(child, dict):
                    child = {}
                    node[segment] = child
                node = child
    return _listify(root)


def _listify(node: Any) -> Any:
    """Turn dicts whose keys are all array indexes into lists ordered by index."""
    if not isinstance(node, dict):
        return node
    converted = {k: _listify(v) for k, v in node.items()}
    indexes = sorted(int(k) for k in converted if k.isdigit())
    if converted and len(indexes) == len(converted) and indexes == list(range(len(indexes))):
        return [converted[str(i)] for i in indexes]
    return converted


def key_name(prefix: str, key: str | int) -> str:
    """Return the bracketed parameter name Stripe reports (``items[0][price]``)."""
    return f"{prefix}[{key}]" if prefix else str(key)


class Spec:
    """Base class of parameter types."""

    nullable = True

    def coerce(self, value: Any, name: str) -> Any:
        """Return the coerced value or raise a Stripe error naming the parameter."""
        raise NotImplementedError


class Str(Spec):
    """A string, optionally restricted to a set of values."""

    def __init__(self, choices: Iterable[str] | None = None, nullable: bool = True) -> None:
        self.choices = tuple(choices) if choices else None
        self.nullable = nullable

    def coerce(self, value: Any, name: str) -> Any:
        if not isinstance(value, str):
            raise invalid(f"Invalid string: {value!r}", name)
        if value == "" and self.nullable:
            return None
        if self.choices and value not in self.choices:
            raise invalid(f"Invalid {name}: must be one of {', '.join(self.choices)}", name)
        return value


def check_redirect_url(value: str, name: str) -> str:
    """Refuse a URL the browser will be sent to unless it is http(s) on an allowed origin.

    ``SANDBOX_REDIRECT_ORIGINS`` (a list of ``scheme://host[:port]``) limits the origins; None
    allows any http(s) address, as for the sandbox served alone.
    """
    parts = urlsplit(value)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname or any(
            ord(char) < 33 for char in value):
        raise invalid("Not a valid URL", name)
    allowed = current_app.config.get("SANDBOX_REDIRECT_ORIGINS")
    if allowed is not None:
        origin = f"{parts.scheme}://{parts.netloc}".lower()
        if origin not in {entry.rstrip("/").lower() for entry in allowed}:
            raise invalid(f"Not a valid URL: {name} must be on {', '.join(allowed)}", name)
    return value


class Url(Str):
    """A URL the browser is sent to (success, cancel and return URLs)."""

    def coerce(self, value: Any, name: str) -> Any:
        value = super().coerce(value, name)
        return None if value is None else check_redirect_url(value, name)


class Int(Spec):
    """An integer with an optional lower bound."""

    def __init__(self, minimum: int | None = None) -> None:
        self.minimum = minimum

    def coerce(self, value: Any, name: str) -> Any:
        if value == "":
            return None
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise invalid(f"Invalid integer: {value}", name) from None
        if self.minimum is not None and number < self.minimum:
            raise invalid(f"Invalid {name}: must be greater than or equal to {self.minimum}", name)
        return number


class Num(Spec):
    """A decimal number (percent_off, percentage) kept as float like Stripe returns it."""

    def coerce(self, value: Any, name: str) -> Any:
        if value == "":
            return None
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise invalid(f"Invalid decimal: {value}", name) from None
        # Whole numbers come back as integers, as Stripe renders ``"percentage": 19``.
        return int(number) if number.is_integer() else number


class Bool(Spec):
    """A boolean sent as ``true``/``false``."""

    def coerce(self, value: Any, name: str) -> Any:
        if value in ("true", True):
            return True
        if value in ("false", False):
            return False
        raise invalid(f"Invalid boolean: {value}", name)


class Meta(Spec):
    """Metadata: string pairs; ``""`` as a whole clears it, ``""`` as a value deletes a key."""

    def coerce(self, value: Any, name: str) -> Any:
        if value == "":
            return None
        if isinstance(value, list):
            # Keys "0", "1", ... decode as an array; metadata keeps them as string keys.
            value = {str(i): item for i, item in enumerate(value)}
        if not isinstance(value, dict):
            raise invalid("Invalid metadata: metadata must be a set of key-value pairs", name)
        if len(value) > 50:
            raise invalid("Invalid metadata: metadata can have up to 50 keys", name)
        for key, item in value.items():
            if not isinstance(item, str):
                raise invalid(f"Invalid metadata value for key {key}", key_name(name, key))
            if len(key) > 40:
                raise invalid(
                    f"Invalid metadata: keys can be at most 40 characters long ({key})", name
                )
            if len(item) > 500:
                raise invalid(
                    f"Invalid metadata: values can be at most 500 characters long ({key})", name
                )
        return value


class List(Spec):
    """An array of items of one spec."""

    def __init__(self, item: Spec | dict) -> None:
        self.item = item

    def coerce(self, value: Any, name: str) -> Any:
        if value == "":
            return []
        if isinstance(value, str):
            # A scalar sent where an array is expected (``expand=x``): accept as one item.
            value = [value]
        if not isinstance(value, list):
            raise invalid(f"Invalid array: {name}", name)
        return [_coerce(self.item, v, key_name(name, i)) for i, v in enumerate(value)]


class Range(Spec):
    """An integer or a ``{gt, gte, lt, lte}`` filter, as on ``created`` list filters."""

    def coerce(self, value: Any, name: str) -> Any:
        if isinstance(value, dict):
            return validate(value, {op: Int() for op in ("gt", "gte", "lt", "lte")}, name)
        return {"eq": Int().coerce(value, name)}


class Anything(Spec):
    """Any decoded value, passed through unchecked."""

    def coerce(self, value: Any, name: str) -> Any:
        return value


def _coerce(spec: Spec | dict, value: Any, name: str) -> Any:
    """Coerce one value against a type or a nested dict spec."""
    if isinstance(spec, dict):
        if value == "":
            return None
        if not isinstance(value, dict):
            raise invalid(f"Invalid object: {name}", name)
        return validate(value, spec, name)
    return spec.coerce(value, name)


def validate(params: dict[str, Any], spec: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Check params against a spec; return coerced values for the keys that were sent."""
    result: dict[str, Any] = {}
    for key, value in params.items():
        name = key_name(prefix, key)
        if key not in spec:
            raise unknown_param(name)
        result[key] = _coerce(spec[key], value, name)
    return result


def need(params: dict[str, Any], *names: str) -> None:
    """Raise Stripe's missing-parameter error for the first absent (or empty) name."""
    for name in names:
        if params.get(name) in (None, "", [], {}):
            raise required(name)


def merge_metadata(
    current: dict[str, str] | None, update: dict[str, str] | None, sent: bool
) -> dict[str, str]:
    """Merge a metadata update: keys are added, ``""`` deletes a key, a cleared whole resets it."""
    if not sent:
        return dict(current or {})
    if update is None:
        return {}
    merged = dict(current or {})
    for key, value in update.items():
        if value == "":
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


EXPAND = List(Str())
LIST_SPEC: dict[str, Spec] = {
    "limit": Int(),
    "starting_after": Str(),
    "ending_before": Str(),
    "created": Range(),
}
