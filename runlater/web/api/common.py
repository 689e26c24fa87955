"""Helpers shared by API routes: JSON bodies, ids, pagination, warnings in answers."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any
from uuid import UUID

from quart import request

from runlater.domain.urls import FieldWarning
from runlater.web.errors import ApiError, not_found, validation_error

MAX_LIMIT = 100
DEFAULT_LIMIT = 50
# Deeper documents are refused before any recursive code (NUL scan, json.dumps) walks them.
MAX_JSON_DEPTH = 100


def _deeper_than(payload: Any, limit: int) -> bool:
    """Whether arrays/objects nest more than ``limit`` levels (iterative: no recursion)."""
    stack = [(payload, 1)]
    while stack:
        value, depth = stack.pop()
        children: Iterable[Any]
        if isinstance(value, dict):
            children = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


async def json_body() -> Any:
    raw = await request.get_data(as_text=False)
    if not raw.strip():
        raise ApiError(400, "invalid_json", "request body must be a JSON object")
    too_deep = f"request body nests arrays/objects more than {MAX_JSON_DEPTH} levels deep"
    try:
        payload = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "invalid_json", f"request body is not valid JSON: {exc}") from None
    except RecursionError:
        raise ApiError(400, "invalid_json", too_deep) from None
    if not isinstance(payload, dict):
        raise ApiError(400, "invalid_json", "request body must be a JSON object")
    if _deeper_than(payload, MAX_JSON_DEPTH):
        raise ApiError(400, "invalid_json", too_deep)
    return payload


def parse_id(raw: str, what: str) -> UUID:
    try:
        return UUID(raw)
    except ValueError:
        raise not_found(what) from None


def pagination() -> tuple[int, int]:
    details: dict[str, list[str]] = {}
    values = {}
    for name, default, low, high in (
        ("limit", DEFAULT_LIMIT, 1, MAX_LIMIT),
        ("offset", 0, 0, 10_000_000),
    ):
        raw = request.args.get(name)
        if raw is None:
            values[name] = default
            continue
        try:
            value = int(raw)
        except ValueError:
            details[name] = ["must be an integer"]
            continue
        if not low <= value <= high:
            details[name] = [f"must be between {low} and {high}"]
        values[name] = value
    if details:
        raise validation_error(details)
    return values["limit"], values["offset"]


def page(
    items: list[dict[str, Any]], rows: list[dict[str, Any]], limit: int, offset: int
) -> dict[str, Any]:
    total = rows[0]["total"] if rows else 0
    return {"data": items, "has_more": offset + len(rows) < total, "limit": limit, "offset": offset}


def with_warnings(body: dict[str, Any], warnings: list[FieldWarning]) -> dict[str, Any]:
    """A response body with ``warnings`` added when there are any."""
    return {**body, "warnings": [w.as_json() for w in warnings]} if warnings else body
