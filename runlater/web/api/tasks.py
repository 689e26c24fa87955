"""``/api/v1/tasks`` and ``/api/v1/executions``: create, read, change, trigger, delete."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, current_app, jsonify, request

from runlater.delivery.ssrf import UrlNotAllowed, check_url
from runlater.errors import Conflict
from runlater.schemas.tasks import cron_row, parse_create, parse_update
from runlater.web import serialize
from runlater.web.api.common import json_body, page, pagination, parse_id
from runlater.web.auth import org_id
from runlater.web.errors import ApiError, validation_error

bp = Blueprint("tasks", __name__)

EXECUTION_STATUSES = frozenset(
    {"pending", "running", "success", "failed", "timeout", "cancelled", "missed"}
)


def _store() -> Any:
    return current_app.config["STORE"]


def _now() -> Any:
    return current_app.config["CLOCK"].now()


async def _check_urls(fields: dict[str, Any]) -> None:
    allow = current_app.config["SETTINGS"].allow_private_targets
    details: dict[str, list[str]] = {}
    for name in ("url", "callback_url", "on_failure_url", "on_recovery_url"):
        if fields.get(name):
            try:
                await check_url(
                    fields[name], allow_private=allow, resolver=current_app.config["RESOLVER"]
                )
            except UrlNotAllowed as exc:
                details[name] = [str(exc)]
    if details:
        raise ApiError(422, "url_not_allowed", "a URL points where Runlater may not call", details)


@bp.post("/tasks")
async def create_task() -> Any:
    draft = parse_create(await json_body(), _now())
    await _check_urls(draft.row)
    row = await _store().insert_task(org_id(), draft.row, draft.delay_s)
    if row["schedule_type"] == "cron":
        return jsonify({"data": serialize.task(row), "message": "Cron task created"}), 201
    data = {
        "task_id": str(row["id"]),
        "execution_id": str(row["execution_id"]),
        "status": "pending",
        "scheduled_for": serialize.ts(row["execution_scheduled_for"]),
    }
    return jsonify({"data": data, "message": "Task queued for execution"}), 202


@bp.get("/tasks")
async def list_tasks() -> Any:
    limit, offset = pagination()
    kind = request.args.get("type")
    if kind is not None and kind not in ("cron", "once"):
        raise validation_error({"type": ["must be cron or once"]})
    status = request.args.get("status")
    if status is not None and status not in EXECUTION_STATUSES:
        raise validation_error({"status": [f"must be one of {sorted(EXECUTION_STATUSES)}"]})
    queue = request.args.get("queue")
    rows = await _store().list_tasks(
        org_id(),
        schedule_type=kind,
        queue="" if queue == "none" else queue,
        status=status,
        limit=limit,
        offset=offset,
    )
    return jsonify(page([serialize.task(r) for r in rows], rows, limit, offset))


@bp.get("/tasks/<task_id>")
async def get_task(task_id: str) -> Any:
    row = await _store().get_task(org_id(), parse_id(task_id, "task"))
    return jsonify({"data": serialize.task(row)})


@bp.route("/tasks/<task_id>", methods=["PATCH", "PUT"])
async def update_task(task_id: str) -> Any:
    tid = parse_id(task_id, "task")
    now = _now()
    changes, expression = parse_update(await json_body(), now)
    await _check_urls(changes)

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

    row = await _store().update_task(org_id(), tid, plan)
    return jsonify({"data": serialize.task(row)})


@bp.delete("/tasks/<task_id>")
async def delete_task(task_id: str) -> Any:
    await _store().delete_task(org_id(), parse_id(task_id, "task"))
    return "", 204


@bp.post("/tasks/<task_id>/trigger")
async def trigger_task(task_id: str) -> Any:
    row = await _store().trigger_task(org_id(), parse_id(task_id, "task"))
    data = {
        "execution_id": str(row["id"]),
        "status": row["status"],
        "scheduled_for": serialize.ts(row["scheduled_for"]),
    }
    return jsonify({"data": data}), 202


@bp.get("/tasks/<task_id>/executions")
async def list_executions(task_id: str) -> Any:
    limit, offset = pagination()
    status = request.args.get("status")
    if status is not None and status not in EXECUTION_STATUSES:
        raise validation_error({"status": [f"must be one of {sorted(EXECUTION_STATUSES)}"]})
    rows = await _store().list_task_executions(
        org_id(), parse_id(task_id, "task"), status=status, limit=limit, offset=offset
    )
    return jsonify(page([serialize.execution(r) for r in rows], rows, limit, offset))


@bp.get("/executions/<execution_id>")
async def get_execution(execution_id: str) -> Any:
    row = await _store().get_execution(org_id(), parse_id(execution_id, "execution"))
    return jsonify({"data": serialize.execution_detail(row)})


@bp.delete("/tasks")
async def cancel_queue() -> Any:
    """``DELETE /tasks?queue=q``: cancel every pending execution of that queue's tasks."""
    queue = request.args.get("queue")
    if not queue:
        raise validation_error({"queue": ["is required: DELETE /tasks?queue=<name>"]})
    cancelled = await _store().cancel_queue(org_id(), queue)
    return jsonify({"data": {"cancelled": cancelled}})


@bp.post("/executions/<execution_id>/retry")
async def retry_execution(execution_id: str) -> Any:
    try:
        row = await _store().retry_execution(org_id(), parse_id(execution_id, "execution"))
    except Conflict as exc:
        raise validation_error({"status": [str(exc)]}, str(exc)) from None
    data = {
        "execution_id": str(row["id"]),
        "status": row["status"],
        "attempt": row["attempt"],
        "scheduled_for": serialize.ts(row["scheduled_for"]),
    }
    return jsonify({"data": data}), 202
