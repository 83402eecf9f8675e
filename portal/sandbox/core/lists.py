"""List and search endpoints: cursor pagination, ``created`` filters and the search query language.

Lists are newest first, ordered by ``created`` then insertion order. ``limit`` defaults to
10 and must be 1..100; ``starting_after``/``ending_before`` take an object id as cursor.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import invalid
from .store import Store

ORDER_DESC = "created DESC, seq DESC"
ORDER_ASC = "created ASC, seq ASC"


def _limit(params: dict[str, Any]) -> int:
    """Return the validated page size."""
    limit = params.get("limit")
    if limit is None:
        return 10
    if not 1 <= limit <= 100:
        raise invalid("Invalid limit: must be between 1 and 100", "limit")
    return limit


def created_filter(value: dict | None, column: str = "created") -> tuple[str, list[int]]:
    """Return an SQL condition for a ``created`` Range filter."""
    if not value:
        return "", []
    ops = {"eq": "=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
    parts, args = [], []
    for op, number in value.items():
        if number is not None:
            parts.append(f"{column} {ops[op]} ?")
            args.append(number)
    return " AND ".join(parts), args


@dataclass(frozen=True)
class Filter:
    """How one list parameter narrows the rows: an SQL condition and the values it binds.

    ``sql`` is a condition with ``?`` placeholders, or a function of the parameter's value
    returning one ("" adds nothing); ``args`` turns the value into the bound values. The
    filter applies when the value is truthy, or with ``when="present"`` whenever the key was
    sent (booleans filter on false too), or ``when="always"`` (the value may be None).
    """

    sql: str | Callable[[Any], str]
    args: Callable[[Any], list] = lambda value: [value]
    when: str = "truthy"


def field(path: str) -> str:
    """Return the SQL expression reading a dotted path of the stored JSON body."""
    return f"json_extract(body, '$.{path}')"


def equals(expr: str) -> Filter:
    """Filter on ``expr = value``."""
    return Filter(f"{expr} = ?")


def flag(expr: str) -> Filter:
    """Filter a boolean field on true or false (stored as JSON true/false: 1/0 in SQL)."""
    return Filter(f"{expr} = ?", lambda value: [1 if value else 0], when="present")


def one_of(expr: str) -> Filter:
    """Filter on ``expr IN (values...)`` for a list parameter."""
    return Filter(lambda values: f"{expr} IN ({', '.join('?' for _ in values)})", list)


def _param(params: dict[str, Any], key: str) -> tuple[bool, Any]:
    """Return whether a (dotted, nested) parameter was sent, and its value."""
    value: Any = params
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            return False, None
        value = value[part]
    return True, value


def filtered(params: dict[str, Any], filters: dict[str, Filter]) -> dict[str, Any]:
    """Return ``paginate``'s ``where`` and ``args`` for the filters whose parameter was sent."""
    where: list[str] = []
    args: list[Any] = []
    for key, spec in filters.items():
        sent, value = _param(params, key)
        if spec.when == "truthy" and not value or spec.when == "present" and not sent:
            continue
        sql = spec.sql(value) if callable(spec.sql) else spec.sql
        if sql:
            where.append(sql)
            args += spec.args(value)
    return {"where": " AND ".join(where), "args": args}


def paginate(
    store: Store,
    params: dict[str, Any],
    url: str,
    *,
    obj_type: str | None = None,
    where: str = "",
    args: tuple | list = (),
    table: str = "objects",
    transform: Callable[[dict], dict] | None = None,
) -> dict:
    """Return a Stripe list object of rows from ``objects`` (or ``events``) matching ``where``."""
    limit = _limit(params)
    conditions, values = [], []
    if table == "objects":
        conditions += ["type = ?", "deleted = 0"]
        values.append(obj_type)
    if where:
        conditions.append(f"({where})")
        values += list(args)
    created_sql, created_args = created_filter(params.get("created"))
    if created_sql:
        conditions.append(created_sql)
        values += created_args
    after, before = params.get("starting_after"), params.get("ending_before")
    cursor_id = after or before
    order = ORDER_DESC
    if cursor_id:
        row = store.conn.execute(
            f"SELECT created, seq FROM {table} WHERE id = ?", (cursor_id,)
        ).fetchone()
        if row is None:
            param = "starting_after" if after else "ending_before"
            raise invalid(f"No such object: '{cursor_id}'", param, "resource_missing")
        if after:
            conditions.append("(created < ? OR (created = ? AND seq < ?))")
        else:
            conditions.append("(created > ? OR (created = ? AND seq > ?))")
            order = ORDER_ASC
        values += [row["created"], row["created"], row["seq"]]
    condition = " AND ".join(conditions) or "1=1"
    sql = f"SELECT body FROM {table} WHERE {condition} ORDER BY {order} LIMIT ?"
    rows = [json.loads(r["body"]) for r in store.conn.execute(sql, (*values, limit + 1))]
    has_more = len(rows) > limit
    rows = rows[:limit]
    if order == ORDER_ASC:
        rows.reverse()
    if transform:
        rows = [transform(r) for r in rows]
    return {"object": "list", "data": rows, "has_more": has_more, "url": url}


def list_of(items: list[dict], url: str) -> dict:
    """Wrap an in-memory collection as a complete (single page) list object."""
    return {"object": "list", "data": items, "has_more": False, "url": url}


_CLAUSE = re.compile(
    r"""\s*(?P<neg>-)?(?P<field>[a-z_]+)(?:\[['"](?P<key>[^'"]+)['"]\])?\s*(?P<op>:|~|>=|<=|>|<)\s*"""
    r"""(?:['"](?P<str>[^'"]*)['"]|(?P<num>-?\d+)|(?P<null>null))\s*"""
)


def parse_query(query: str) -> tuple[str, list[dict]]:
    """Parse Stripe's search query language into ("AND"|"OR", clauses)."""
    if not query or not query.strip():
        raise invalid("Missing required param: query.", "query")
    parts = re.split(r"\s+(AND|OR)\s+", query.strip())
    joins = {p for p in parts[1::2]}
    if len(joins) > 1:
        raise invalid("Search queries cannot mix AND and OR.", "query")
    clauses = []
    for text in parts[0::2]:
        match = _CLAUSE.fullmatch(text)
        if not match:
            raise invalid(f"Invalid search query: could not parse '{text}'.", "query")
        value: Any = match["str"]
        if match["num"] is not None:
            value = int(match["num"])
        elif match["null"] is not None:
            value = None
        clauses.append(
            {
                "field": match["field"],
                "key": match["key"],
                "op": match["op"],
                "value": value,
                "negate": bool(match["neg"]),
            }
        )
    return (joins.pop() if joins else "AND"), clauses


def _clause_holds(obj: dict, clause: dict, fields: dict[str, Callable[[dict], Any]]) -> bool:
    """Evaluate one search clause against an object."""
    if clause["field"] == "metadata":
        actual = (obj.get("metadata") or {}).get(clause["key"] or "")
    elif clause["field"] in fields:
        actual = fields[clause["field"]](obj)
    else:
        raise invalid(f"Field '{clause['field']}' is not supported for search.", "query")
    wanted, op = clause["value"], clause["op"]
    if op == ":":
        if isinstance(actual, str) and isinstance(wanted, str):
            held = actual.lower() == wanted.lower()
        else:
            held = actual == wanted
    elif op == "~":
        held = isinstance(actual, str) and str(wanted).lower() in actual.lower()
    else:
        if actual is None or wanted is None:
            return False
        held = {
            ">": actual > wanted,
            "<": actual < wanted,
            ">=": actual >= wanted,
            "<=": actual <= wanted,
        }[op]
    return not held if clause["negate"] else held


def search(
    store: Store,
    obj_type: str,
    params: dict[str, Any],
    url: str,
    fields: dict[str, Callable[[dict], Any]],
) -> dict:
    """Return a ``search_result`` page of objects matching ``params['query']``."""
    join, clauses = parse_query(params.get("query") or "")
    limit = _limit(params)
    offset = 0
    if params.get("page"):
        try:
            offset = int(str(params["page"]).removeprefix("page_"))
        except ValueError:
            raise invalid("Invalid page token.", "page") from None
    combine = all if join == "AND" else any
    hits = [
        o for o in store.select(obj_type) if combine(_clause_holds(o, c, fields) for c in clauses)
    ]
    page = hits[offset : offset + limit]
    has_more = len(hits) > offset + limit
    return {
        "object": "search_result",
        "data": page,
        "has_more": has_more,
        "next_page": f"page_{offset + limit}" if has_more else None,
        "url": url,
    }
