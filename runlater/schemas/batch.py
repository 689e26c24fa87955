"""``POST /tasks/batch``: many one-time tasks that share everything but their body.

Each item becomes one task's body by the same rule as a task's ``body``; what the batch means
(its shared fields read as ``POST /tasks`` reads a one-time task) is ``runlater.domain.batch``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from runlater.errors import InvalidInput, invalid
from runlater.schemas.queues import QUEUE_NAME_HELP, QUEUE_NAME_PATTERN
from runlater.schemas.tasks import MAX_BODY_BYTES, Method, TaskFields, unwrap

MAX_ITEMS = 1000


def body_too_large(details: dict[str, list[str]]) -> InvalidInput:
    """413: the contract's answer to a task body over 256 KiB, details keyed by item path."""
    return InvalidInput(
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


def item_body(item: Any, path: str) -> str | None:
    """One item's body, with problems keyed by the item's path (``items[3]``)."""
    try:
        unwrap({"body": item}, "task")  # the NUL rule of every task field
    except InvalidInput as exc:
        raise invalid({path: (exc.details or {}).get("body", [exc.message])}) from None
    try:
        return encode_body(item)
    except ValueError as exc:
        raise body_too_large({path: [str(exc)]}) from None


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
