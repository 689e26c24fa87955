"""What the ``/v2`` routes share: the request's headers and destination, the services, and
the checks that an id names a message or schedule made through ``/v2``."""

from __future__ import annotations

import json
from typing import Any, cast
from urllib.parse import unquote
from uuid import UUID

from quart import request

from runlater.domain.service import TaskService
from runlater.errors import NotFound
from runlater.store.ports import WebStore
from runlater.store.records import Row
from runlater.web.context import services
from runlater.web.errors import ApiError


def tasks() -> TaskService:
    return services().tasks


def store() -> WebStore:
    return services().store


async def raw_body() -> bytes:
    return cast(bytes, await request.get_data(as_text=False))


def header_pairs() -> list[tuple[str, str]]:
    return list(request.headers.items())


def destination(segments: int) -> str:
    """The raw destination after the path's first ``segments`` segments (``/v2/publish/`` is
    2), with the query string: as sent (percent-escapes kept), or decoded when it was sent
    escaped whole (``https%3A%2F%2F...``)."""
    raw_path = request.scope.get("raw_path") or request.path.encode()
    parts = raw_path.decode("latin-1").split("?", 1)[0].split("/", segments + 1)
    rest = parts[-1] if len(parts) == segments + 2 else ""
    if not rest.lower().startswith(("http://", "https://")):
        rest = unquote(rest)
    query = request.query_string.decode("latin-1")
    return f"{rest}?{query}" if query else rest


def task_id(raw: str, what: str) -> UUID:
    try:
        return UUID(raw)
    except ValueError:
        raise NotFound(f"{what} not found") from None


async def qstash_task(org_id: UUID, raw_id: str, schedule_type: str) -> Row:
    """The organization's task ``raw_id`` if it is a /v2 message (``once``) or schedule
    (``cron``); NotFound otherwise (also for another organization's)."""
    what = "message" if schedule_type == "once" else "schedule"
    try:
        row = await store().get_task(org_id, task_id(raw_id, what))
    except NotFound:
        raise NotFound(f"{what} not found") from None
    if row.get("origin") != "qstash" or row["schedule_type"] != schedule_type:
        raise NotFound(f"{what} not found")
    return row


async def json_of_body() -> Any:
    raw = await request.get_data(as_text=False)
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise ApiError(400, "invalid_json", f"request body is not valid JSON: {exc}") from None
