"""``POST /tasks/batch``: many one-time tasks that share everything but their body.

The shared fields are validated exactly as ``POST /tasks`` validates a one-time task
(``parse_create``); each item becomes one task's body by the same rule as a task's ``body``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from runlater.schemas.queues import QUEUE_NAME_HELP, QUEUE_NAME_PATTERN
from runlater.schemas.tasks import MAX_BODY_BYTES, Method, TaskFields, parse_create, unwrap
from runlater.web.errors import ApiError, validation_error

MAX_ITEMS = 1000
_NOT_IN_A_BATCH = {
    "cron": "a batch creates one-time tasks; create cron tasks with POST /tasks",
    "cron_expression": "a batch creates one-time tasks; create cron tasks with POST /tasks",
    "body": "each element of items is one task's body",
}


def body_too_large(details: dict[str, list[str]]) -> ApiError:
    """413: the contract's answer to a task body over 256 KiB, details keyed by item path."""
    return ApiError(
        413,
        "payload_too_large",
        f"a task body is larger than {MAX_BODY_BYTES // 1024} KiB",
        details,
    )


def encode_body(value: Any) -> str | None:
    """A task body as ``POST /tasks`` stores it: a string as is, any other JSON value
    compactly encoded. ValueError when it is over 256 KiB."""
    try:
        return TaskFields.model_validate({"body": value}).body
    except ValidationError as exc:
        raise ValueError(exc.errors()[0]["msg"].removeprefix("Value error, ")) from None


def _item_body(item: Any, path: str) -> str | None:
    """One item's body, with problems keyed by the item's path (``items[3]``)."""
    try:
        unwrap({"body": item}, "task")  # the NUL rule of every task field
    except ApiError as exc:
        raise validation_error({path: (exc.details or {}).get("body", [exc.message])}) from None
    try:
        return encode_body(item)
    except ValueError as exc:
        raise body_too_large({path: [str(exc)]}) from None


@dataclass(frozen=True, slots=True)
class BatchDraft:
    """A validated batch: the fields every task shares, their delay, and one body per task."""

    row: dict[str, Any]
    delay_s: float | None
    bodies: list[str | None]


def parse_batch(payload: dict[str, Any], now: datetime) -> BatchDraft:
    """The batch, or the error ``POST /tasks`` would give for its fields (422, or 400
    ``invalid_delay``/``invalid_run_at``); items are checked one by one: 413 for one over
    256 KiB, 422 for a NUL character, each keyed by its path (``items[3]``)."""
    items = payload.get("items")
    shared = {k: v for k, v in payload.items() if k != "items"}
    refused = {k: [m] for k, m in _NOT_IN_A_BATCH.items() if shared.get(k) is not None}
    if shared.get("queue") is None:
        refused["queue"] = ["is required: the tasks of a batch run in this queue, in order"]
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_ITEMS:
        refused["items"] = [f"must be a list of 1 to {MAX_ITEMS} task bodies"]
    if refused:
        raise validation_error(refused)
    draft = parse_create(shared, now)
    too_large: dict[str, list[str]] = {}
    invalid: dict[str, list[str]] = {}
    bodies: list[str | None] = []
    for index, item in enumerate(items):
        try:
            bodies.append(_item_body(item, f"items[{index}]"))
        except ApiError as exc:
            (too_large if exc.status == 413 else invalid).update(exc.details or {})
    if too_large:
        raise body_too_large(too_large)
    if invalid:
        raise validation_error(invalid)
    row = {k: v for k, v in draft.row.items() if k != "body"}
    return BatchDraft(row, draft.delay_s, bodies)


# ------------------------------------------------------------------------------- OpenAPI models

_URL = r"^[Hh][Tt][Tt][Pp][Ss]?://[^\s/?#]+\S*$"


class BatchRequest(BaseModel):
    """Many one-time tasks in one queue: each element of ``items`` becomes one task whose
    ``body`` is that element (a string as is, any other JSON value JSON-encoded; ≤ 256 KiB
    each, else 413). Everything else is shared by every task and validated as in
    ``POST /tasks`` — which also accepts the other optional task fields (``name``,
    ``expected_status_codes``, ...); ``cron`` and ``body`` are refused. The request may be up to
    8 MiB."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "url": "https://example.com/hooks/import",
                    "queue": "imports",
                    "items": [{"row": 1}, {"row": 2}, "plain text body"],
                    "method": "POST",
                    "headers": {"Content-Type": "application/json"},
                    "delay": "5m",
                }
            ]
        }
    )

    url: str = Field(max_length=2048, pattern=_URL, description="http(s) URL every task calls")
    queue: str = Field(
        description="the queue the tasks run in: one at a time, in the order of items; "
        + QUEUE_NAME_HELP,
        json_schema_extra={"pattern": QUEUE_NAME_PATTERN},
    )
    items: list[Any] = Field(
        min_length=1, max_length=MAX_ITEMS, description="one task body per element, in order"
    )
    method: Method | None = Field(default=None, description="default POST")
    headers: dict[str, str] | None = Field(default=None, description="sent with every task")
    delay: str | int | None = Field(
        default=None,
        description="'30s', '5m', '2h', '1d' or seconds; else 400 invalid_delay",
    )
    run_at: str | None = Field(
        default=None,
        description="ISO-8601 time with offset, at most 5 minutes in the past; else 400 "
        "invalid_run_at. Give at most one of delay and run_at (none: now)",
        json_schema_extra={"format": "date-time"},
    )
    timeout_ms: int | None = Field(default=None, ge=1000, le=300000, description="default 30000")
    retry_attempts: int | None = Field(
        default=None, ge=0, le=10, description="retries of a failed attempt (default 5)"
    )
    callback_url: str | None = Field(default=None, max_length=2048, pattern=_URL)


class BatchItemCreated(BaseModel):
    """One item's task and its first execution."""

    task_id: UUID
    execution_id: UUID


class BatchCreated(BaseModel):
    """How many tasks were created, when their executions are due, and each item's ids."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "queue": "imports",
                    "created": 2,
                    "scheduled_for": "2026-01-01T09:05:00.000Z",
                    "items": [
                        {
                            "task_id": "0190f1c2-7a4b-7c3d-9e8f-1a2b3c4d5e6f",
                            "execution_id": "0190f1c2-8b5c-7d4e-8f90-2b3c4d5e6f70",
                        },
                        {
                            "task_id": "0190f1c2-7a4b-7c3d-9e8f-1a2b3c4d5e70",
                            "execution_id": "0190f1c2-8b5c-7d4e-8f90-2b3c4d5e6f71",
                        },
                    ],
                }
            ]
        }
    )

    queue: str
    created: int = Field(ge=1, le=MAX_ITEMS)
    scheduled_for: datetime = Field(description="when every task of the batch is due")
    items: list[BatchItemCreated] = Field(
        description="the task and execution created for each item, in the order of `items`"
    )
