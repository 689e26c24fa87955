"""A task's page (its executions as they happen, run now, enable or disable, a sparkline of
duration and outcome) and an execution's page (the request sent, the response, timing, the
attempt chain, the callback's outcome)."""

from __future__ import annotations

from typing import Any

from quart import Blueprint

from runlater.domain.people import Action
from runlater.web.context import services
from runlater.web.pages import guard
from runlater.web.pages.ids import page_id
from runlater.web.pages.render import page

bp = Blueprint("detail_pages", __name__)

SHOWN = 50
SPARK_W, SPARK_H = 300, 40


def duration_bars(points: list[tuple[int, bool, str]]) -> list[dict[str, Any]]:
    """Bars of (duration ms, ok, label), oldest first and the last ``SHOWN`` of them: height
    by duration (relative to the longest shown), colour by outcome."""
    shown = points[-SHOWN:]
    if not shown:
        return []
    longest = max(ms for ms, _, _ in shown) or 1
    width = SPARK_W / SHOWN
    bars = []
    for i, (ms, ok, label) in enumerate(shown):
        height = max(2.0, SPARK_H * ms / longest)
        bars.append(
            {
                "x": round(i * width, 1),
                "y": round(SPARK_H - height, 1),
                "w": round(width - 1, 1),
                "h": round(height, 1),
                "ok": ok,
                "label": label,
            }
        )
    return bars


def sparkline(executions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The finished executions' bars (the newest come first in ``executions``)."""
    return duration_bars(
        [
            (e["duration_ms"] or 0, e["status"] == "success",
             f"{e['status']} {e['duration_ms'] or 0} ms")
            for e in reversed(executions)
            if e["finished_at"] is not None
        ]
    )  # fmt: skip


@bp.get("/tasks/<task_id>")
@guard.signed_in()
async def task(task_id: str) -> Any:
    store = services().store
    org, tid = guard.org_id(), page_id(task_id)
    row = await store.get_task(org, tid)
    executions = await store.list_task_executions(org, tid, status=None, limit=SHOWN, offset=0)
    person = guard.current()
    return await page(
        "task.html",
        task=row,
        executions=executions,
        bars=sparkline(executions),
        spark=(SPARK_W, SPARK_H),
        can_run=person.may(Action.RUN),
        can_manage=person.may(Action.MANAGE_WORK),
    )


@bp.get("/executions/<execution_id>")
@guard.signed_in()
async def execution(execution_id: str) -> Any:
    store = services().store
    org, eid = guard.org_id(), page_id(execution_id)
    row = await store.get_execution(org, eid)
    return await page(
        "execution.html",
        execution=row,
        task=await store.get_task(org, row["task_id"]),
        chain=await store.execution_chain(org, eid),
        callback=await store.get_callback_for_execution(org, eid),
    )
