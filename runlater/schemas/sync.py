"""``PUT /sync``: the organization's tasks declared as a list, matched by ``name``.

This module checks what can be checked without the database: the request's shape, each item's
fields (the rules of ``POST /tasks``), names present and unique. Whether an item creates or
updates a task is decided against the locked rows, in ``runlater.domain.sync``. Every problem
is reported under the item's path, e.g. ``tasks[3].cron_expression``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from runlater.errors import InvalidInput, invalid
from runlater.schemas.batch import body_too_large, encode_body
from runlater.schemas.inbound import EndpointFields, parse_endpoint
from runlater.schemas.monitors import MonitorFields, parse_monitor
from runlater.schemas.tasks import TaskFields, unwrap, validate_fields
from runlater.schemas.unknown import unknown_fields

MAX_SYNC_TASKS = 1000
MAX_SYNC_MONITORS = 1000
MAX_SYNC_ENDPOINTS = 1000
KNOWN_KEYS = frozenset({"tasks", "monitors", "endpoints", "delete_removed"})
INVALID = "invalid sync request; nothing was changed"
N = TypeVar("N")
# Error codes whose message is about one timing field (they carry no details).
_CODE_FIELDS = {"invalid_delay": "delay", "invalid_run_at": "run_at"}


@dataclass(frozen=True, slots=True)
class SyncItem:
    """One declared task: its path in the request, its name, and its fields (aliases merged)."""

    path: str
    name: str
    data: dict[str, Any]
    fields: TaskFields


@dataclass(frozen=True, slots=True)
class MonitorSyncItem:
    """One declared monitor: its path in the request, its name, and its body (aliases
    merged, fields checked)."""

    path: str
    name: str
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class EndpointSyncItem:
    """One declared inbound endpoint: its path in the request, its name, and its body
    (fields checked)."""

    path: str
    name: str
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class SyncDraft:
    """A kind is None when the request leaves it out (then none of it is touched)."""

    tasks: list[SyncItem] | None
    delete_removed: bool
    monitors: list[MonitorSyncItem] | None = None
    endpoints: list[EndpointSyncItem] | None = None


def under(path: str, exc: InvalidInput) -> dict[str, list[str]]:
    """An error's details re-keyed under an item's path."""
    if exc.details:
        return {f"{path}.{field}": messages for field, messages in exc.details.items()}
    field = _CODE_FIELDS.get(exc.code)
    return {f"{path}.{field}" if field else path: [exc.message]}


def parse_dry_run(raw: str | None) -> bool:
    if raw is None:
        return False
    value = raw.strip().lower()
    if value not in ("true", "false", "1", "0"):
        raise invalid({"dry_run": ["must be true or false"]})
    return value in ("true", "1")


def _item(index: int, raw: Any, too_large: dict[str, list[str]]) -> SyncItem:
    path = f"tasks[{index}]"
    if not isinstance(raw, dict):
        raise invalid({path: ["must be an object"]})
    try:
        data = unwrap(raw, "task")
    except InvalidInput as exc:
        raise invalid(under(path, exc)) from None
    name = data.get("name")
    if not isinstance(name, str) or not name:
        raise invalid(
            {f"{path}.name": ["is required, a non-empty string: sync matches tasks by name"]}
        )
    if "body" in data:
        try:
            encode_body(data["body"])
        except ValueError as exc:
            too_large[f"{path}.body"] = [str(exc)]
    try:
        fields = validate_fields(data)
    except InvalidInput as exc:
        raise invalid(under(path, exc)) from None
    return SyncItem(path, name, data, fields)


def _items(raw: list[Any]) -> list[SyncItem]:
    errors: dict[str, list[str]] = {}
    too_large: dict[str, list[str]] = {}
    items: list[SyncItem] = []
    first_with_name: dict[str, str] = {}
    for index, value in enumerate(raw):
        try:
            item = _item(index, value, too_large)
        except InvalidInput as exc:
            errors.update(exc.details or {})
            continue
        if item.name in first_with_name:
            errors[f"{item.path}.name"] = [
                f"{item.name!r} is also the name of {first_with_name[item.name]}"
            ]
            continue
        first_with_name[item.name] = item.path
        items.append(item)
    if too_large:
        raise body_too_large(too_large)
    if errors:
        raise invalid(errors, INVALID)
    return items


def _named_items(
    raw: list[Any],
    kind: str,
    parse: Callable[[Any], tuple[dict[str, Any], Any]],
    make: Callable[[str, str, dict[str, Any]], N],
) -> list[N]:
    """Declared monitors or endpoints (``kind``): each parsed, named, and its name unique in the
    request (sync matches by name); 422 naming every item at fault."""
    errors: dict[str, list[str]] = {}
    items: list[N] = []
    first_with_name: dict[str, str] = {}
    for index, value in enumerate(raw):
        path = f"{kind}[{index}]"
        try:
            data, fields = parse(value)
        except InvalidInput as exc:
            errors.update(under(path, exc))
            continue
        if not fields.name:
            errors[f"{path}.name"] = [
                f"is required, a non-empty string: sync matches {kind} by name"
            ]
            continue
        if fields.name in first_with_name:
            errors[f"{path}.name"] = [
                f"{fields.name!r} is also the name of {first_with_name[fields.name]}"
            ]
            continue
        first_with_name[fields.name] = path
        items.append(make(path, fields.name, data))
    if errors:
        raise invalid(errors, INVALID)
    return items


def _monitor_items(raw: list[Any]) -> list[MonitorSyncItem]:
    return _named_items(raw, "monitors", parse_monitor, MonitorSyncItem)


def _endpoint_items(raw: list[Any]) -> list[EndpointSyncItem]:
    return _named_items(raw, "endpoints", parse_endpoint, EndpointSyncItem)


def parse_sync(payload: dict[str, Any]) -> SyncDraft:
    """The request's declared tasks, or 422 (413 for a body over 256 KiB) naming every
    problem found without the database."""
    errors = unknown_fields(payload, KNOWN_KEYS)
    delete_removed = payload.get("delete_removed", False)
    if not isinstance(delete_removed, bool):
        errors["delete_removed"] = ["must be true or false"]
    endpoints = payload.get("endpoints")
    if endpoints is not None and not isinstance(endpoints, list):
        errors["endpoints"] = ["must be a list"]
    elif endpoints is not None and len(endpoints) > MAX_SYNC_ENDPOINTS:
        errors["endpoints"] = [f"at most {MAX_SYNC_ENDPOINTS} endpoints per request"]
    tasks = payload.get("tasks")
    if tasks is not None and not isinstance(tasks, list):
        errors["tasks"] = ["must be a list"]
    elif tasks is not None and len(tasks) > MAX_SYNC_TASKS:
        errors["tasks"] = [f"at most {MAX_SYNC_TASKS} tasks per request"]
    monitors = payload.get("monitors")
    if monitors is not None and not isinstance(monitors, list):
        errors["monitors"] = ["must be a list"]
    elif monitors is not None and len(monitors) > MAX_SYNC_MONITORS:
        errors["monitors"] = [f"at most {MAX_SYNC_MONITORS} monitors per request"]
    if errors:
        raise invalid(errors, INVALID)
    task_items: list[SyncItem] | None = None
    monitor_items: list[MonitorSyncItem] | None = None
    endpoint_items: list[EndpointSyncItem] | None = None
    for parse in ("tasks", "monitors", "endpoints"):
        try:
            if parse == "tasks" and tasks is not None:
                task_items = _items(tasks)
            elif parse == "monitors" and monitors is not None:
                monitor_items = _monitor_items(monitors)
            elif parse == "endpoints" and endpoints is not None:
                endpoint_items = _endpoint_items(endpoints)
        except InvalidInput as exc:
            if exc.code != "validation_error":
                raise
            errors.update(exc.details or {})
    if errors:
        raise invalid(errors, INVALID)
    return SyncDraft(task_items, delete_removed, monitor_items, endpoint_items)


# ------------------------------------------------------------------------------- OpenAPI models


class SyncTask(TaskFields):
    """A task as ``POST /tasks`` takes it, plus a required ``name``. A new name creates the task
    (same defaults and rules as ``POST /tasks``); an existing one is edited like
    ``PATCH /tasks/{id}``: fields left out keep their value, changing ``cron``/``timezone``
    recomputes ``next_run_at``, a finished one-time task is not re-run, a task cannot change
    between cron and one-time. ``delay`` only places a new one-time task."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "nightly report",
                    "url": "https://example.com/hooks/report",
                    "cron": "0 3 * * *",
                    "timezone": "Europe/Amsterdam",
                }
            ]
        }
    )

    name: str = Field(
        min_length=1,
        max_length=200,
        description="what a task is matched by: unique within the request",
    )
    url: str | None = Field(default=None, max_length=2048, description="required for a new task")
    cron: str | None = Field(default=None, description="5-field cron expression: a cron task")
    cron_expression: str | None = Field(default=None, description="the same as `cron`")
    delay: str | int | None = Field(
        default=None, description="a new one-time task's delay ('30s', '5m', '2h', '1d', seconds)"
    )
    run_at: str | None = Field(
        default=None,
        description="when a one-time task runs (ISO-8601 with offset)",
        json_schema_extra={"format": "date-time"},
    )
    scheduled_at: str | None = Field(
        default=None, description="the same as `run_at`", json_schema_extra={"format": "date-time"}
    )


class SyncMonitor(MonitorFields):
    """A monitor as ``POST /monitors`` takes it, with a required ``name``. A new name creates
    it; an existing one is edited like ``PATCH /monitors/{id}`` (its ping URL stays)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"name": "nightly backup", "cron": "0 3 * * *", "timezone": "UTC"}]
        }
    )

    name: str = Field(min_length=1, max_length=200, description="what a monitor is matched by")
    cron: str | None = Field(default=None, description="the same as `cron_expression`")


class SyncEndpoint(EndpointFields):
    """An inbound endpoint as ``POST /endpoints`` takes it, with a required ``name``. A new
    name creates it; an existing one is edited like ``PATCH /endpoints/{id}`` (its slug, and
    so its inbound URL, stays unless given)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"name": "stripe", "forward_urls": ["https://example.com/hooks/stripe"]}]
        }
    )

    name: str = Field(min_length=1, max_length=200, description="what an endpoint is matched by")


class SyncRequest(BaseModel):
    """The declared state, all applied in one transaction: any invalid item is 422 and
    nothing changes. A kind left out is not touched."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "tasks": [
                        {
                            "name": "nightly report",
                            "url": "https://example.com/hooks/report",
                            "cron": "0 3 * * *",
                            "timezone": "Europe/Amsterdam",
                        },
                        {
                            "name": "cache warmup",
                            "url": "https://example.com/hooks/warm",
                            "method": "POST",
                            "cron": "*/15 * * * *",
                        },
                    ],
                    "delete_removed": True,
                }
            ]
        }
    )

    tasks: list[SyncTask] | None = Field(
        default=None, max_length=MAX_SYNC_TASKS, description="the tasks, matched by name"
    )
    monitors: list[SyncMonitor] | None = Field(
        default=None,
        max_length=MAX_SYNC_MONITORS,
        description="the heartbeat monitors, matched by name",
    )
    endpoints: list[SyncEndpoint] | None = Field(
        default=None,
        max_length=MAX_SYNC_ENDPOINTS,
        description="the inbound endpoints, matched by name",
    )
    delete_removed: bool = Field(
        default=False,
        description="also delete the tasks that sync manages (created or once named by a sync) "
        "and that this request does not name, as DELETE /tasks/{id} does; tasks sync never "
        "created nor named (e.g. made by POST /tasks or a batch) are left alone; only for kinds "
        "given in the request",
    )


class SyncQuery(BaseModel):
    dry_run: bool = Field(
        default=False,
        description="true: report what would change, run every check, change nothing",
    )


class SyncChanges(BaseModel):
    """Names by what happened to them: created, updated (something differed), deleted
    (``delete_removed``), unchanged (not written)."""

    created: list[str]
    updated: list[str]
    deleted: list[str]
    unchanged: list[str]


class SyncResult(BaseModel):
    """What the sync did — or, with ``dry_run``, would do."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "dry_run": False,
                    "tasks": {
                        "created": ["cache warmup"],
                        "updated": ["nightly report"],
                        "deleted": ["old cleanup"],
                        "unchanged": [],
                    },
                }
            ]
        }
    )

    dry_run: bool
    tasks: SyncChanges
    monitors: SyncChanges | None = Field(
        default=None, description="present when the request declared monitors"
    )
    endpoints: SyncChanges | None = Field(
        default=None, description="present when the request declared endpoints"
    )
