"""What a task payload means: a new task's row, an edit's columns, and the schedule both imply.

``draft_task`` turns a validated ``POST /tasks`` body into the row to insert (defaults, the
cron schedule or the one-time placement); ``draft_edit`` and ``plan_edit`` do the same for
``PATCH /tasks/{id}``, where what is written depends on the current row, locked by the store.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from runlater.cron import CronSchedule
from runlater.errors import InvalidCron, invalid
from runlater.schemas.tasks import parse_delay, parse_run_at, unwrap, validate_fields

# A one-time task retries by default; a cron task does not (its next run is the retry), unless
# asked to — and then never past its next scheduled run.
DEFAULT_ONCE_RETRY_ATTEMPTS = 5
DEFAULT_CRON_RETRY_ATTEMPTS = 0
DEFAULT_TIMEOUT_MS = 30_000
# Fields an edit may not set to null.
_NOT_NULL = ("url", "name", "method", "timezone", "timeout_ms", "retry_attempts", "enabled")

Row = dict[str, Any]


@dataclass(frozen=True, slots=True)
class TaskDraft:
    """A validated new task: its row values, and the delay of a one-time task."""

    row: Row
    delay_s: float | None


@dataclass(frozen=True, slots=True)
class TaskEditDraft:
    """A validated edit: the changed writable fields, and a new cron expression if given."""

    changes: Row
    expression: str | None


def is_text(body: bytes) -> bool:
    """Whether ``body`` can travel as a task's text body: UTF-8 without NUL (Postgres text
    holds no NUL)."""
    if b"\x00" in body:
        return False
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def stored_body(raw: bytes) -> Row:
    """The body columns of raw bytes: text in ``body`` when ``is_text`` (what the API shows
    and edits), else ``body_bytes`` (as Postgres' hex input form, for the JSON the store
    populates the row from)."""
    if is_text(raw):
        return {"body": raw.decode("utf-8"), "body_bytes": None}
    return {"body": None, "body_bytes": "\\x" + raw.hex()}


def cron_row(expression: str, timezone: str, now: datetime) -> Row:
    """Schedule columns of a cron task, or a validation error naming the field."""
    try:
        schedule = CronSchedule(expression, timezone)
    except InvalidCron as exc:
        field = "timezone" if "zone" in str(exc).lower() else "cron_expression"
        raise invalid({field: [str(exc)]}) from None
    return {
        "cron_expression": schedule.expression,
        "timezone": schedule.timezone,
        "interval_minutes": schedule.interval_minutes(now),
        "next_run_at": schedule.next_after(now).isoformat(),
    }


def draft_task(payload: Any, now: datetime) -> TaskDraft:
    """A new task from a ``POST /tasks`` body: at most one of cron, delay and run_at."""
    data = unwrap(payload, "task")
    timing = [k for k in ("cron_expression", "delay", "scheduled_at") if data.get(k) is not None]
    if len(timing) > 1:
        raise invalid({k: ["give only one of cron, delay, run_at"] for k in timing})
    fields = validate_fields(data)
    if fields.url is None:
        raise invalid({"url": ["is required"]})
    row = fields.model_dump(exclude={"method"})
    row["timeout_ms"] = fields.timeout_ms or DEFAULT_TIMEOUT_MS
    row["retry_attempts"] = fields.retry_attempts
    row["headers"] = fields.headers or {}
    row["enabled"] = True if fields.enabled is None else fields.enabled
    timezone = fields.timezone or "UTC"
    delay_s: float | None = None
    if "cron_expression" in timing:
        expression = data["cron_expression"]
        if not isinstance(expression, str):
            raise invalid({"cron_expression": ["must be a string"]})
        row.update(
            cron_row(expression, timezone, now), schedule_type="cron", method=fields.method or "GET"
        )
        if row["retry_attempts"] is None:
            row["retry_attempts"] = DEFAULT_CRON_RETRY_ATTEMPTS
    else:
        row.update(schedule_type="once", method=fields.method or "POST", timezone=timezone)
        if row["retry_attempts"] is None:
            row["retry_attempts"] = DEFAULT_ONCE_RETRY_ATTEMPTS
        if "scheduled_at" in timing:
            row["scheduled_at"] = parse_run_at(data["scheduled_at"], now).isoformat()
        else:
            delay_s = parse_delay(data["delay"]) if "delay" in timing else 0.0
    row["name"] = fields.name or f"{row['method']} {fields.url}"[:200]
    return TaskDraft(row, delay_s)


def draft_edit(payload: Any, now: datetime) -> TaskEditDraft:
    """An edit from a ``PATCH /tasks/{id}`` body. ``run_at`` moves a one-time task whose
    execution is still pending; ``delay`` is refused (it places new tasks only)."""
    data = unwrap(payload, "task")
    if "delay" in data:
        raise invalid({"delay": ["use run_at to move a one-time task"]})
    fields = validate_fields(data)
    changes = {k: getattr(fields, k) for k in fields.model_fields_set}
    if data.get("scheduled_at") is not None:
        changes["scheduled_at"] = parse_run_at(data["scheduled_at"], now).isoformat()
    for required in _NOT_NULL:
        if required in changes and changes[required] is None:
            raise invalid({required: ["cannot be null"]})
    expression = data.get("cron_expression")
    if "cron_expression" in data and not isinstance(expression, str):
        raise invalid({"cron_expression": ["must be a string"]})
    return TaskEditDraft(changes, expression)


def plan_edit(edit: TaskEditDraft, now: datetime) -> Callable[[Row], Row]:
    """What an edit writes, decided from the locked current row: the changed fields, and a
    recomputed ``next_run_at`` when a cron task's expression or zone changes (or it is
    re-enabled). A one-time task cannot become a cron task, nor a cron task get a run_at."""
    changes, expression = edit.changes, edit.expression

    def plan(current: Row) -> Row:
        out = {k: v for k, v in changes.items() if k != "cron_expression"}
        if current["schedule_type"] != "cron":
            if expression is not None:
                raise invalid({"cron_expression": ["a one-time task cannot become a cron task"]})
            return out
        if "scheduled_at" in out:
            raise invalid({"scheduled_at": ["a cron task has no run_at; change its cron"]})
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
