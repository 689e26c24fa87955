"""Create, edit and clone a task in the browser, with the API's fields, rules and messages:
the form becomes the API's payload and goes through ``TaskService`` like a ``POST /tasks``.
The cron helper (``/cron-preview``) previews the next runs in the chosen time zone and says in
words what the expression means."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from cron_descriptor import (
    FormatException,
    MissingFieldException,
    Options,
    WrongArgumentException,
    get_description,
)
from quart import Blueprint, Response, jsonify, request

from runlater.cron import CronSchedule
from runlater.domain.people import Action
from runlater.errors import InvalidCron, InvalidInput, LimitExceeded, invalid
from runlater.web import serialize
from runlater.web.context import services
from runlater.web.pages import guard
from runlater.web.pages.ids import page_id
from runlater.web.pages.render import STALE_FORM, audit, form_values, page, to

bp = Blueprint("task_form", __name__)

METHODS = ("POST", "GET", "PUT", "PATCH", "DELETE")
TEXT_FIELDS = ("name", "url", "method", "timezone", "queue", "callback_url",
               "expected_status_codes", "expected_body_pattern")  # fmt: skip
INT_FIELDS = ("retry_attempts", "timeout_ms")
PREVIEW_RUNS = 5
# The domain names fields canonically; the form's fields carry the API's short names.
FORM_NAMES = {"cron_expression": "cron", "scheduled_at": "run_at"}


def as_form(details: dict[str, list[str]] | None) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for key, messages in (details or {}).items():
        found.setdefault(FORM_NAMES.get(key, key), []).extend(messages)
    return found


def _headers(raw: str) -> dict[str, str]:
    headers: dict[str, str] = {}
    for number, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        name, sep, value = line.partition(":")
        if not sep or not name.strip():
            raise invalid({"headers": [f"line {number}: write one header per line, Name: value"]})
        headers[name.strip()] = value.strip()
    return headers


def payload_of(form: Any, *, editing: bool) -> dict[str, Any]:
    """The API payload a task form stands for (empty optional fields: left out when
    creating, cleared when editing)."""
    payload: dict[str, Any] = {}
    for field in TEXT_FIELDS:
        value = form.get(field, "").strip()
        if value:
            payload[field] = value
        elif editing and field in ("queue", "callback_url", "expected_status_codes",
                                   "expected_body_pattern"):  # fmt: skip
            payload[field] = None
    errors: dict[str, list[str]] = {}
    for field in INT_FIELDS:
        value = form.get(field, "").strip()
        if value:
            try:
                payload[field] = int(value)
            except ValueError:
                errors[field] = ["must be a whole number"]
    try:
        payload["headers"] = _headers(form.get("headers", ""))
    except InvalidInput as exc:
        errors.update(exc.details or {})
    body = form.get("body", "")
    if body or editing:
        payload["body"] = body or None
    when = form.get("schedule", "once")
    if when == "cron":
        payload["cron"] = form.get("cron", "").strip()
    elif form.get("run_at", "").strip():
        payload["run_at"] = form.get("run_at", "").strip()
    elif form.get("delay", "").strip():
        payload["delay"] = form.get("delay", "").strip()
    elif not editing:
        payload["delay"] = "0s"
    if editing:
        payload["enabled"] = form.get("enabled") == "on"
    if errors:
        raise invalid(errors)
    return payload


def values_of(task: dict[str, Any]) -> dict[str, str]:
    """A task's fields as the form shows them."""
    values = {f: "" if task.get(f) is None else str(task[f]) for f in (*TEXT_FIELDS, *INT_FIELDS)}
    values["headers"] = "\n".join(f"{k}: {v}" for k, v in (task.get("headers") or {}).items())
    values["body"] = task.get("body") or ""
    values["schedule"] = task.get("schedule_type") or "once"
    values["cron"] = task.get("cron_expression") or ""
    values["run_at"] = serialize.ts(task.get("scheduled_at")) or ""
    values["enabled"] = "on" if task.get("enabled", True) else ""
    return values


async def form_page(status: int = 200, **context: Any) -> Response:
    context.setdefault("values", {"method": "POST", "timezone": "UTC", "schedule": "once",
                                  "retry_attempts": "5", "timeout_ms": "30000"})  # fmt: skip
    return await page("task_form.html", status, methods=METHODS, **context)


@bp.get("/tasks/new")
@guard.signed_in(Action.MANAGE_WORK)
async def new() -> Any:
    return await form_page(title="New task", action="/tasks/new")


@bp.get("/tasks/<task_id>/clone")
@guard.signed_in(Action.MANAGE_WORK)
async def clone(task_id: str) -> Any:
    task = await services().store.get_task(guard.org_id(), page_id(task_id))
    values = values_of(task)
    values["name"] = f"{task['name']} (copy)"[:200]
    values["run_at"] = ""
    return await form_page(title=f"Copy of {task['name']}", action="/tasks/new", values=values)


@bp.post("/tasks/new")
@guard.signed_in(Action.MANAGE_WORK)
async def create() -> Any:
    form = await guard.posted()
    back = {"title": "New task", "action": "/tasks/new", "values": form_values(form)}
    try:
        guard.check_form(form)
        accepted = await services().tasks.create(guard.org_id(), payload_of(form, editing=False))
    except guard.StaleForm:
        return await form_page(403, form_error=STALE_FORM, **back)
    except InvalidInput as exc:
        return await form_page(422, errors=as_form(exc.details), form_error=exc.message, **back)
    except LimitExceeded as exc:
        return await form_page(422, errors=as_form({exc.field: [exc.message]}), **back)
    task_id = accepted.value["id"]
    audit("POST /api/v1/tasks", task_id)
    return to(f"/tasks/{task_id}", "task_created")


@bp.get("/tasks/<task_id>/edit")
@guard.signed_in(Action.MANAGE_WORK)
async def edit(task_id: str) -> Any:
    task = await services().store.get_task(guard.org_id(), page_id(task_id))
    return await form_page(
        title=f"Edit {task['name']}",
        action=f"/tasks/{task['id']}/edit",
        values=values_of(task),
        editing=True,
    )


@bp.post("/tasks/<task_id>/edit")
@guard.signed_in(Action.MANAGE_WORK)
async def update(task_id: str) -> Any:
    tid: UUID = page_id(task_id)
    task = await services().store.get_task(guard.org_id(), tid)  # 404 before the form
    form = await guard.posted()
    back = {"title": f"Edit {task['name']}", "action": f"/tasks/{tid}/edit",
            "values": form_values(form), "editing": True}  # fmt: skip
    try:
        guard.check_form(form)
        await services().tasks.update(guard.org_id(), tid, payload_of(form, editing=True))
    except guard.StaleForm:
        return await form_page(403, form_error=STALE_FORM, **back)
    except InvalidInput as exc:
        return await form_page(422, errors=as_form(exc.details), form_error=exc.message, **back)
    except LimitExceeded as exc:
        return await form_page(422, errors=as_form({exc.field: [exc.message]}), **back)
    audit("PATCH /api/v1/tasks/{task_id}", tid)
    return to(f"/tasks/{tid}", "task_saved")


@bp.get("/cron-preview")
@guard.signed_in()
async def cron_preview() -> Any:
    """The next runs of an expression in a time zone, and what it means in words."""
    expression = request.args.get("expression", "").strip()[:200]
    timezone = request.args.get("timezone", "UTC").strip()[:64] or "UTC"
    try:
        schedule = CronSchedule(expression, timezone)
        at = services().clock.now()
        runs = []
        for _ in range(PREVIEW_RUNS):
            at = schedule.next_after(at)
            runs.append(serialize.ts(at))
    except (InvalidCron, OverflowError, ValueError) as exc:
        return jsonify({"error": str(exc)}), 422
    options = Options()
    options.use_24hour_time_format = True
    try:
        words = get_description(expression, options)
    except (FormatException, MissingFieldException, WrongArgumentException):
        words = None  # the describer knows fewer forms (@daily) than our parser: runs still show
    return jsonify({"next_runs": runs, "description": words, "timezone": timezone})
