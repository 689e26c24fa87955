"""Queues: depth, running and the oldest pending item's age, live; pause and resume."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Response

from runlater.domain.people import Action
from runlater.web.context import services
from runlater.web.pages import guard
from runlater.web.pages.render import STALE_FORM, audit, page, to

bp = Blueprint("queues_page", __name__)


async def queues_page(status: int = 200, **context: Any) -> Response:
    rows = await services().store.list_queues(guard.org_id())
    return await page(
        "queues.html",
        status,
        queues=rows,
        can_manage=guard.current().may(Action.MANAGE_WORK),
        **context,
    )


@bp.get("/queues")
@guard.signed_in()
async def queues() -> Any:
    return await queues_page()


async def _set_paused(name: str, paused: bool) -> Any:
    try:
        await guard.read_form()
    except guard.StaleForm:
        return await queues_page(403, form_error=STALE_FORM)
    known = {q["name"] for q in await services().store.list_queues(guard.org_id())}
    if name not in known:
        return await page("not_found.html", 404)
    await services().store.set_queue_paused(guard.org_id(), name, paused)
    audit(f"POST /api/v1/queues/{{name}}/{'pause' if paused else 'resume'}", name)
    return to("/queues", "queue_paused" if paused else "queue_resumed")


@bp.post("/queues/<name>/pause")
@guard.signed_in(Action.MANAGE_WORK)
async def pause(name: str) -> Any:
    return await _set_paused(name, True)


@bp.post("/queues/<name>/resume")
@guard.signed_in(Action.MANAGE_WORK)
async def resume(name: str) -> Any:
    return await _set_paused(name, False)
