"""OpenAPI models of the task and execution routes: what each answer holds, what a request may
hold, and the list filters.

Handlers build their JSON in ``runlater.web.serialize``; the response models say exactly what is
sent (every key present, nullable ones nullable). The request models document the fields of
``runlater.schemas.tasks.TaskFields`` with the constraints its validators enforce; validation
itself stays in ``parse_create``/``parse_update``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, RootModel, StrictBool, StrictInt

from runlater.schemas.common import FieldWarning, PageQuery, warnings_field
from runlater.schemas.tasks import MAX_DELAY_S, Method, TaskFields

ScheduleType = Literal["cron", "once"]
ExecutionStatus = Literal[
    "pending", "running", "success", "failed", "timeout", "cancelled", "missed"
]
_URL_PATTERN = r"^[Hh][Tt][Tt][Pp][Ss]?://[^\s/?#]+\S*$"
_HEADER_NAME_PATTERN = r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$"
RETRY_HELP = (
    "retries of a failed attempt, with backoff (default 5 for a one-time task, 0 for a cron "
    "task; a cron task's retry is not made when it would run after the task's next run)"
)
_DELAY_PATTERN = r"^\s*\d+\s*[smhd]?\s*$"

TASK_EXAMPLE: dict[str, Any] = {
    "id": "0190f1c2-7a4b-7c3d-9e8f-1a2b3c4d5e6f",
    "name": "nightly report",
    "url": "https://example.com/hooks/report",
    "method": "POST",
    "headers": {"Content-Type": "application/json"},
    "body": '{"report": "daily"}',
    "schedule_type": "cron",
    "cron_expression": "0 3 * * *",
    "timezone": "Europe/Amsterdam",
    "scheduled_at": None,
    "next_run_at": "2026-01-02T02:00:00.000Z",
    "enabled": True,
    "timeout_ms": 30000,
    "retry_attempts": 0,
    "callback_url": None,
    "failure_callback_url": None,
    "expected_status_codes": "200,201",
    "expected_body_pattern": None,
    "queue": None,
    "notify_on_failure": None,
    "notify_on_recovery": None,
    "on_failure_url": None,
    "on_recovery_url": None,
    "alert_after": 1,
    "badge_token": "3f2a9c0d5e8b4a7f9c1d2e3f4a5b6c7d",
    "origin": "api",
    "last_execution_at": "2026-01-01T02:00:01.250Z",
    "last_execution_status": "success",
    "inserted_at": "2025-12-01T10:00:00.000Z",
    "updated_at": "2025-12-01T10:00:00.000Z",
}
EXECUTION_EXAMPLE: dict[str, Any] = {
    "id": "0190f1c2-8b5c-7d4e-8f90-2b3c4d5e6f70",
    "task_id": TASK_EXAMPLE["id"],
    "status": "success",
    "attempt": 1,
    "scheduled_for": "2026-01-01T02:00:00.000Z",
    "started_at": "2026-01-01T02:00:00.012Z",
    "finished_at": "2026-01-01T02:00:01.250Z",
    "status_code": 200,
    "duration_ms": 1238,
    "error_message": None,
}


def _request_config(*examples: dict[str, Any]) -> ConfigDict:
    """A request model's examples; fields left out are unchanged or defaulted, so pydantic's
    ``default: null`` (which would claim null is what an omission means) is dropped."""

    def extra(schema: dict[str, Any]) -> None:
        for prop in schema.get("properties", {}).values():
            if "default" in prop and prop["default"] is None:
                del prop["default"]
        if examples:
            schema["examples"] = list(examples)

    return ConfigDict(json_schema_extra=extra)


class Task(BaseModel):
    """A task: an HTTP request Runlater sends on a schedule."""

    model_config = ConfigDict(json_schema_extra={"examples": [TASK_EXAMPLE]})

    id: UUID
    name: str
    url: str
    method: Method
    headers: dict[str, str]
    body: str | None
    schedule_type: ScheduleType
    cron_expression: str | None = Field(description="set for cron tasks")
    timezone: str = Field(description="IANA time zone the cron expression is evaluated in")
    scheduled_at: datetime | None = Field(description="when a one-time task runs")
    next_run_at: datetime | None = Field(description="next run of an enabled cron task")
    enabled: bool
    timeout_ms: int = Field(ge=1000, le=300000)
    retry_attempts: int = Field(ge=0, le=10, description=RETRY_HELP)
    callback_url: str | None
    failure_callback_url: str | None = Field(
        description="POSTed once when an execution fails for good (lands in the DLQ)"
    )
    expected_status_codes: str | None
    expected_body_pattern: str | None
    queue: str | None
    notify_on_failure: bool | None
    notify_on_recovery: bool | None
    on_failure_url: str | None
    on_recovery_url: str | None
    alert_after: int = Field(ge=1, le=100, description="consecutive failures before a notification")
    badge_token: str = Field(description="its public badge: /badge/{badge_token}/status.svg")
    origin: Literal["api", "inbound", "qstash"] = Field(
        description="the front door that made it: the API (and dashboard), an inbound "
        "endpoint's forward, or the QStash-compatible /v2 API"
    )
    last_execution_at: datetime | None
    last_execution_status: ExecutionStatus | None
    inserted_at: datetime
    updated_at: datetime


class Execution(BaseModel):
    """One attempt at running a task."""

    model_config = ConfigDict(json_schema_extra={"examples": [EXECUTION_EXAMPLE]})

    id: UUID
    task_id: UUID
    status: ExecutionStatus
    attempt: int = Field(ge=1, description="1 for the first attempt; retries count up")
    scheduled_for: datetime
    started_at: datetime | None
    finished_at: datetime | None
    status_code: int | None = Field(description="the target's HTTP status, if it answered")
    duration_ms: int | None = Field(ge=0)
    error_message: str | None


class ExecutionRequest(BaseModel):
    """What was sent; all null until the execution has run."""

    method: str | None
    url: str | None
    headers: dict[str, str] | None
    body: str | None


class ExecutionResponse(BaseModel):
    """What the target answered; the body is text, truncated to 256 KiB."""

    status: int
    headers: dict[str, str] | None
    body: str | None


class ExecutionDetail(Execution):
    """An execution with the request sent and the response received (null if none)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    **EXECUTION_EXAMPLE,
                    "request": {
                        "method": "POST",
                        "url": TASK_EXAMPLE["url"],
                        "headers": {"Content-Type": "application/json"},
                        "body": TASK_EXAMPLE["body"],
                    },
                    "response": {
                        "status": 200,
                        "headers": {"content-type": "text/plain"},
                        "body": "ok",
                    },
                }
            ]
        }
    )

    request: ExecutionRequest
    response: ExecutionResponse | None


class TaskQueued(BaseModel):
    """A one-time task was accepted; its first execution is pending."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "task_id": TASK_EXAMPLE["id"],
                    "execution_id": EXECUTION_EXAMPLE["id"],
                    "status": "pending",
                    "scheduled_for": "2026-01-01T09:00:00.000Z",
                }
            ]
        }
    )

    task_id: UUID
    execution_id: UUID
    status: Literal["pending"]
    scheduled_for: datetime


class TaskTriggered(BaseModel):
    """A new execution of the task, due now."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "execution_id": EXECUTION_EXAMPLE["id"],
                    "status": "pending",
                    "scheduled_for": "2026-01-01T09:00:00.000Z",
                }
            ]
        }
    )

    execution_id: UUID
    status: Literal["pending"]
    scheduled_for: datetime


class ExecutionRetried(TaskTriggered):
    """A new attempt of a failed execution, in the same retry chain."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "execution_id": EXECUTION_EXAMPLE["id"],
                    "status": "pending",
                    "attempt": 2,
                    "scheduled_for": "2026-01-01T09:00:00.000Z",
                }
            ]
        }
    )

    attempt: int = Field(ge=2)


class QueueCancelled(BaseModel):
    """How many pending executions of the queue were cancelled."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"cancelled": 3}]})

    cancelled: int = Field(ge=0)


class TaskRequestFields(TaskFields):
    """The writable fields as the spec shows them: constraints the validators enforce."""

    model_config = _request_config()

    headers: dict[str, str] | None = Field(
        default=None,
        description="sent with every request; hop-by-hop headers and Host are refused",
        json_schema_extra={
            "propertyNames": {"pattern": _HEADER_NAME_PATTERN},
            "additionalProperties": {"type": "string", "pattern": r"^[\t\x20-\x7e]*$"},
            "maxProperties": 50,
        },
    )
    body: Any = Field(
        default=None,
        description="a string is sent as is; any other JSON value is sent JSON-encoded "
        "(at most 256 KiB)",
    )
    callback_url: str | None = Field(
        default=None,
        max_length=2048,
        pattern=_URL_PATTERN,
        description="POSTed the outcome of each execution",
    )
    failure_callback_url: str | None = Field(
        default=None,
        max_length=2048,
        pattern=_URL_PATTERN,
        description="POSTed once when an execution fails for good (lands in the DLQ)",
    )
    on_failure_url: str | None = Field(default=None, max_length=2048, pattern=_URL_PATTERN)
    on_recovery_url: str | None = Field(default=None, max_length=2048, pattern=_URL_PATTERN)
    alert_after: StrictInt | None = Field(
        default=None, ge=1, le=100, description="consecutive failures before a notification (1)"
    )
    expected_status_codes: str | None = Field(
        default=None,
        pattern=r"^\s*[1-5]\d\d(\s*,\s*[1-5]\d\d)*\s*$",
        description="comma-separated statuses that count as success (default: any 2xx)",
    )
    timezone: str | None = Field(
        default=None, max_length=64, description="IANA time zone of a cron task (default UTC)"
    )
    retry_attempts: StrictInt | None = Field(default=None, ge=0, le=10, description=RETRY_HELP)


_CRON = Field(
    default=None,
    min_length=1,
    description="5-field cron expression (or a macro such as @daily): makes a cron task",
)
_CRON_ALIAS = Field(default=None, min_length=1, description="the same as `cron`")
_RUN_AT = Field(
    default=None,
    description="ISO-8601 time with offset, at most 5 minutes in the past; else 400 invalid_run_at",
)
_RUN_AT_ALIAS = Field(default=None, description="the same as `run_at`")


class TaskCreate(TaskRequestFields):
    """A new task. Give at most one timing key: ``cron``, ``delay`` or ``run_at`` (none: now).

    ``cron`` ≡ ``cron_expression`` and ``run_at`` ≡ ``scheduled_at``; both names with different
    values is 422.
    """

    model_config = _request_config(
        {
            "url": "https://example.com/hooks/welcome",
            "method": "POST",
            "headers": {"Content-Type": "application/json"},
            "body": {"user_id": 42},
            "delay": "5m",
        },
        {
            "name": "nightly report",
            "url": "https://example.com/hooks/report",
            "cron": "0 3 * * *",
            "timezone": "Europe/Amsterdam",
        },
    )

    url: str = Field(max_length=2048, pattern=_URL_PATTERN, description="http(s) URL to call")
    cron: str | None = _CRON
    cron_expression: str | None = _CRON_ALIAS
    delay: (
        Annotated[str, Field(pattern=_DELAY_PATTERN)]
        | Annotated[int, Field(ge=0, le=MAX_DELAY_S)]
        | None
    ) = Field(
        default=None,
        description="'30s', '5m', '2h', '1d' or seconds (at most 366 days); else 400 invalid_delay",
    )
    run_at: datetime | None = _RUN_AT
    scheduled_at: datetime | None = _RUN_AT_ALIAS


class TaskCreateWrapped(BaseModel):
    """The same body wrapped in the resource's singular name."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"task": {"url": "https://example.com/hooks/ping"}}]}
    )

    task: TaskCreate


class TaskCreateRequest(RootModel[TaskCreate | TaskCreateWrapped]):
    """A new task, flat or wrapped in ``{"task": {...}}``."""


def _leave_out(**constraints: Any) -> Any:
    """A field the spec shows as optional but not nullable: it may be left out, and null is
    refused (``draft_edit``). Typed ``Any`` so the non-optional annotation can carry it."""
    return Field(default=None, **constraints)


class TaskUpdate(TaskRequestFields):
    """Changed fields only. Changing ``cron`` or ``timezone`` recomputes ``next_run_at``;
    ``run_at`` moves a one-time task whose execution is still pending; ``delay`` is refused."""

    model_config = _request_config({"cron": "*/30 * * * *", "enabled": False})

    url: str = _leave_out(max_length=2048, pattern=_URL_PATTERN)
    name: str = _leave_out(min_length=1, max_length=200)
    method: Method = _leave_out()
    timezone: str = _leave_out(max_length=64)
    timeout_ms: StrictInt = _leave_out(ge=1000, le=300000)
    retry_attempts: StrictInt = _leave_out(ge=0, le=10)
    enabled: StrictBool = _leave_out()
    cron: str | None = _CRON
    cron_expression: str | None = _CRON_ALIAS
    run_at: datetime | None = _RUN_AT
    scheduled_at: datetime | None = _RUN_AT_ALIAS


class TaskUpdateWrapped(BaseModel):
    """The same body wrapped in the resource's singular name."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"task": {"enabled": True}}]})

    task: TaskUpdate


class TaskUpdateRequest(RootModel[TaskUpdate | TaskUpdateWrapped]):
    """Changed fields, flat or wrapped in ``{"task": {...}}``."""


class TaskListQuery(PageQuery):
    queue: str | None = Field(
        default=None, description="only tasks of this queue; `none`: tasks without a queue"
    )
    type: ScheduleType | None = Field(default=None, description="cron or once")
    status: ExecutionStatus | None = Field(
        default=None, description="only tasks whose last execution has this status"
    )
    origin: Literal["api", "inbound", "qstash", "all"] | None = Field(
        default=None,
        description="only tasks made by this front door; `all`: every task. Default: every "
        "task but inbound endpoints' forwards (one per event and URL; listed with the event)",
    )


class ExecutionListQuery(PageQuery):
    status: ExecutionStatus | None = Field(default=None, description="only this status")


class CancelQueueQuery(BaseModel):
    queue: str = Field(min_length=1, description="the queue whose pending executions to cancel")


class CronTaskCreated(BaseModel):
    """A cron task was created (``201``)."""

    data: Task
    message: Literal["Cron task created"]
    warnings: list[FieldWarning] | None = warnings_field()


class OnceTaskQueued(BaseModel):
    """A one-time task was accepted (``202``); its first execution is pending."""

    data: TaskQueued
    message: Literal["Task queued for execution"]
    warnings: list[FieldWarning] | None = warnings_field()
