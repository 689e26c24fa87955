"""``/api/v1/tasks`` and ``/api/v1/executions``: create, read, change, trigger, delete."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, jsonify, request
from quart_schema import document_querystring, document_request, document_response

from runlater.errors import Conflict
from runlater.schemas.common import Data, DataWarnings, Page
from runlater.schemas.task_api import (
    CancelQueueQuery,
    CronTaskCreated,
    Execution,
    ExecutionDetail,
    ExecutionListQuery,
    ExecutionRetried,
    OnceTaskQueued,
    QueueCancelled,
    Task,
    TaskCreateRequest,
    TaskListQuery,
    TaskTriggered,
    TaskUpdateRequest,
)
from runlater.store.ports import WebStore
from runlater.web import openapi, serialize
from runlater.web.api.common import json_body, page, pagination, parse_id, with_warnings
from runlater.web.auth import org_id
from runlater.web.context import services
from runlater.web.errors import validation_error

bp = Blueprint("tasks", __name__)

# The ?origin= of the task list: a front door, or every task.
ORIGINS = ("api", "inbound", "qstash", "all")

EXECUTION_STATUSES = frozenset(
    {"pending", "running", "success", "failed", "timeout", "cancelled", "missed"}
)


def _store() -> WebStore:
    return services().store


def _status_arg() -> str | None:
    """The ``status`` filter of a list: an execution status, or absent."""
    status = request.args.get("status")
    if status is not None and status not in EXECUTION_STATUSES:
        raise validation_error({"status": [f"must be one of {sorted(EXECUTION_STATUSES)}"]})
    return status


def _text_arg(name: str) -> str | None:
    """A free-text query parameter; NUL (which no stored text can hold) is 422, not a 500."""
    value = request.args.get(name)
    if value is not None and "\x00" in value:
        raise validation_error({name: ["must not contain NUL characters"]})
    return value


@bp.post("/tasks")
@document_request(TaskCreateRequest)
@document_response(CronTaskCreated, 201)
@document_response(OnceTaskQueued, 202)
@openapi.errors("invalid_delay", "invalid_run_at", "url_not_allowed", "limit_exceeded")
async def create_task() -> Any:
    """Create a task: a cron task (201), or a one-time task run now, later or at a time (202)."""
    created = await services().tasks.create(org_id(), await json_body())
    row, warnings = created.value, created.warnings
    if row["schedule_type"] == "cron":
        body = {"data": serialize.task(row), "message": "Cron task created"}
        return jsonify(with_warnings(body, warnings)), 201
    data = {
        "task_id": str(row["id"]),
        "execution_id": str(row["execution_id"]),
        "status": "pending",
        "scheduled_for": serialize.ts(row["execution_scheduled_for"]),
    }
    body = {"data": data, "message": "Task queued for execution"}
    return jsonify(with_warnings(body, warnings)), 202


@bp.get("/tasks")
@document_querystring(TaskListQuery)
@document_response(Page[Task], 200)
async def list_tasks() -> Any:
    """List tasks, newest activity first."""
    limit, offset = pagination()
    kind = request.args.get("type")
    if kind is not None and kind not in ("cron", "once"):
        raise validation_error({"type": ["must be cron or once"]})
    status = _status_arg()
    queue = _text_arg("queue")
    origin = request.args.get("origin")
    if origin is not None and origin not in ORIGINS:
        raise validation_error({"origin": [f"must be one of {', '.join(ORIGINS)}"]})
    rows = await _store().list_tasks(
        org_id(),
        schedule_type=kind,
        queue="" if queue == "none" else queue,
        status=status,
        limit=limit,
        offset=offset,
        origin=origin,
    )
    return jsonify(page([serialize.task(r) for r in rows], rows, limit, offset))


@bp.get("/tasks/<task_id>")
@document_response(Data[Task], 200)
async def get_task(task_id: str) -> Any:
    """Get a task."""
    row = await _store().get_task(org_id(), parse_id(task_id, "task"))
    return jsonify({"data": serialize.task(row)})


@bp.route("/tasks/<task_id>", methods=["PATCH", "PUT"])
@document_request(TaskUpdateRequest)
@document_response(DataWarnings[Task], 200)
@openapi.errors("invalid_run_at", "url_not_allowed", "limit_exceeded")
async def update_task(task_id: str) -> Any:
    """Change a task's fields (PUT is the same as PATCH: only the fields given change)."""
    tid = parse_id(task_id, "task")
    updated = await services().tasks.update(org_id(), tid, await json_body())
    return jsonify(with_warnings({"data": serialize.task(updated.value)}, updated.warnings))


@bp.delete("/tasks/<task_id>")
@openapi.no_content
async def delete_task(task_id: str) -> Any:
    """Delete a task; its pending executions are cancelled, its history is kept."""
    await services().tasks.delete(org_id(), parse_id(task_id, "task"))
    return "", 204


@bp.post("/tasks/<task_id>/trigger")
@document_response(Data[TaskTriggered], 202)
@openapi.errors("limit_exceeded")
async def trigger_task(task_id: str) -> Any:
    """Run a task now, as a new execution (also when the task is disabled)."""
    row = await services().tasks.trigger(org_id(), parse_id(task_id, "task"))
    data = {
        "execution_id": str(row["id"]),
        "status": row["status"],
        "scheduled_for": serialize.ts(row["scheduled_for"]),
    }
    return jsonify({"data": data}), 202


@bp.get("/tasks/<task_id>/executions")
@document_querystring(ExecutionListQuery)
@document_response(Page[Execution], 200)
async def list_executions(task_id: str) -> Any:
    """List a task's executions (without bodies), newest first."""
    limit, offset = pagination()
    status = _status_arg()
    rows = await _store().list_task_executions(
        org_id(), parse_id(task_id, "task"), status=status, limit=limit, offset=offset
    )
    return jsonify(page([serialize.execution(r) for r in rows], rows, limit, offset))


@bp.get("/executions/<execution_id>")
@document_response(Data[ExecutionDetail], 200)
async def get_execution(execution_id: str) -> Any:
    """Get an execution with the request sent and the response received."""
    row = await _store().get_execution(org_id(), parse_id(execution_id, "execution"))
    return jsonify({"data": serialize.execution_detail(row)})


@bp.delete("/tasks")
@document_querystring(CancelQueueQuery)
@document_response(Data[QueueCancelled], 200)
async def cancel_queue() -> Any:
    """Cancel every pending execution of a queue's tasks (``DELETE /tasks?queue=q``)."""
    queue = _text_arg("queue")
    if not queue:
        raise validation_error({"queue": ["is required: DELETE /tasks?queue=<name>"]})
    cancelled = await _store().cancel_queue(org_id(), queue)
    return jsonify({"data": {"cancelled": cancelled}})


@bp.post("/executions/<execution_id>/retry")
@document_response(Data[ExecutionRetried], 202)
@openapi.errors("validation_error", "limit_exceeded")
async def retry_execution(execution_id: str) -> Any:
    """Retry a failed or timed-out execution: a new attempt in the same retry chain.

    Any other status is 422 ``validation_error``.
    """
    try:
        row = await services().tasks.retry(org_id(), parse_id(execution_id, "execution"))
    except Conflict as exc:
        raise validation_error({"status": [str(exc)]}, str(exc)) from None
    data = {
        "execution_id": str(row["id"]),
        "status": row["status"],
        "attempt": row["attempt"],
        "scheduled_for": serialize.ts(row["scheduled_for"]),
    }
    return jsonify({"data": data}), 202
