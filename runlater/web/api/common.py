"""Helpers shared by API routes: JSON bodies, ids, pagination, task URL checks and edits."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import UUID

from quart import current_app, request

from runlater.delivery.ssrf import UrlNotAllowed, check_url
from runlater.schemas.tasks import cron_row
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


TASK_URL_FIELDS = ("url", "callback_url", "on_failure_url", "on_recovery_url")


UrlWarning = dict[str, str]


async def check_urls(fields: dict[str, Any], *, prefix: str = "") -> list[UrlWarning]:
    """422 ``url_not_allowed`` when a URL a task may call is known to be blocked by the SSRF
    guard; otherwise the warnings to show (a host name that does not resolve now), each
    ``{"field", "message"}`` with the field's path under ``prefix``."""
    allow = current_app.config["SETTINGS"].allow_private_targets
    details: dict[str, list[str]] = {}
    warnings: list[UrlWarning] = []
    for name in TASK_URL_FIELDS:
        if fields.get(name):
            try:
                warning = await check_url(
                    fields[name], allow_private=allow, resolver=current_app.config["RESOLVER"]
                )
            except UrlNotAllowed as exc:
                details[f"{prefix}{name}"] = [str(exc)]
                continue
            if warning is not None:
                warnings.append({"field": f"{prefix}{name}", "message": warning})
    if details:
        raise ApiError(422, "url_not_allowed", "a URL points where Runlater may not call", details)
    return warnings


def with_warnings(body: dict[str, Any], warnings: list[UrlWarning]) -> dict[str, Any]:
    """A response body with ``warnings`` added when there are any."""
    return {**body, "warnings": warnings} if warnings else body


def task_update_plan(
    changes: dict[str, Any], expression: str | None, now: datetime
) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """What ``PATCH /tasks/{id}`` writes, decided from the locked current row: the changed
    fields, and a recomputed ``next_run_at`` when a cron task's expression or zone changes (or
    it is re-enabled). A one-time task cannot become a cron task, nor a cron task get a run_at.
    """

    def plan(current: dict[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in changes.items() if k != "cron_expression"}
        if current["schedule_type"] != "cron":
            if expression is not None:
                raise validation_error(
                    {"cron_expression": ["a one-time task cannot become a cron task"]}
                )
            return out
        if "scheduled_at" in out:
            raise validation_error({"scheduled_at": ["a cron task has no run_at; change its cron"]})
        new_expression = expression or current["cron_expression"]
        new_zone = changes.get("timezone") or current["timezone"]
        re_enabled = changes.get("enabled") is True and not current["enabled"]
        if (
            new_expression != current["cron_expression"]
            or new_zone != current["timezone"]
            or re_enabled
            or current["next_run_at"] is None
        ):
            out.update(cron_row(new_expression, new_zone, now))
        return out

    return plan
