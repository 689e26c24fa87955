"""The task list: search, filters and pages kept in the URL, bulk actions, live updates.

Bulk actions run through the domain (``TaskService``) in the page's one transaction: every
selected task is the organization's, or nothing is done (another organization's id is 404).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from quart import Blueprint, Response, request

from runlater.domain.people import Action
from runlater.errors import LimitExceeded
from runlater.web.context import services
from runlater.web.pages import guard
from runlater.web.pages.ids import page_id
from runlater.web.pages.render import STALE_FORM, audit, page, to

bp = Blueprint("tasks_page", __name__)

PAGE_SIZE = 25
MAX_BULK = 100
STATUSES = ("success", "failed", "timeout", "running", "missed")
BULK = {"enable": Action.MANAGE_WORK, "disable": Action.MANAGE_WORK,
        "delete": Action.MANAGE_WORK, "run": Action.RUN}  # fmt: skip


def _filters() -> dict[str, str]:
    """The list's filters as the URL holds them (unknown values are ignored)."""
    args = request.args
    found = {
        "q": args.get("q", "").strip()[:200].replace("\x00", ""),
        "type": args.get("type", "") if args.get("type") in ("once", "cron") else "",
        "queue": args.get("queue", "").strip()[:200].replace("\x00", ""),
        "status": args.get("status", "") if args.get("status") in STATUSES else "",
        "enabled": args.get("enabled", "") if args.get("enabled") in ("yes", "no") else "",
    }
    return {k: v for k, v in found.items() if v}


def _offset() -> int:
    try:
        return max(0, min(int(request.args.get("offset", "0")), 1_000_000))
    except ValueError:
        return 0


async def tasks_page(status: int = 200, **context: Any) -> Response:
    filters = _filters()
    offset = _offset()
    rows = await services().store.search_tasks(
        guard.org_id(),
        text=filters.get("q"),
        schedule_type=filters.get("type"),
        queue=filters.get("queue"),
        status=filters.get("status"),
        enabled={"yes": True, "no": False}.get(filters.get("enabled", "")),
        limit=PAGE_SIZE,
        offset=offset,
    )
    total = rows[0]["total"] if rows else 0
    person = guard.current()
    return await page(
        "tasks.html",
        status,
        tasks=rows,
        filters=filters,
        total=total,
        offset=offset,
        page_size=PAGE_SIZE,
        query=lambda **change: "?" + urlencode({**filters, **change}),
        statuses=STATUSES,
        can_manage=person.may(Action.MANAGE_WORK),
        can_run=person.may(Action.RUN),
        **context,
    )


@bp.get("/tasks")
@guard.signed_in()
async def tasks() -> Any:
    return await tasks_page()


@bp.post("/tasks/bulk")
@guard.signed_in(Action.RUN)
async def bulk() -> Any:
    try:
        form = await guard.read_form()
    except guard.StaleForm:
        return await tasks_page(403, form_error=STALE_FORM)
    action = form.get("action", "")
    if action not in BULK:
        return await tasks_page(422, form_error="Choose enable, disable, run now or delete.")
    if not guard.current().may(BULK[action]):
        raise guard.Refused(
            f"Your role ({guard.current().role}) does not allow this. Ask an owner or an admin."
        )
    ids = list(dict.fromkeys(form.getlist("task_id")))
    if not ids:
        return await tasks_page(422, form_error="Select at least one task.")
    if len(ids) > MAX_BULK:
        return await tasks_page(422, form_error=f"Select at most {MAX_BULK} tasks at a time.")
    task_ids = [page_id(raw) for raw in ids]  # a malformed id is as unknown as a foreign one
    org = guard.org_id()
    tasks_service = services().tasks
    try:
        for task_id in task_ids:
            if action == "run":
                await tasks_service.trigger(org, task_id)
            elif action == "delete":
                await tasks_service.delete(org, task_id)
            else:
                await tasks_service.update(org, task_id, {"enabled": action == "enable"})
    except LimitExceeded as exc:
        return await tasks_page(422, form_error=exc.message)
    audit(f"POST /tasks/bulk {action}", ",".join(str(t) for t in task_ids))
    back = request.args.get("back", "")
    flash = f"one_{action}" if len(task_ids) == 1 else f"bulk_{action}"
    return to(back if back.startswith("/tasks") else "/tasks", flash)
