"""HTTP uptime checks in the browser: the list with each check's state, last answer and uptime
(live on ``uptime_check.changed``), add a check, pause, resume and delete — through
``UptimeService`` like the API."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Response

from runlater.domain.people import Action
from runlater.errors import InvalidInput
from runlater.web.context import services
from runlater.web.pages import guard
from runlater.web.pages.ids import page_id
from runlater.web.pages.render import STALE_FORM, audit, form_values, page, to

bp = Blueprint("uptime_pages", __name__)


async def uptime_page(status: int = 200, **context: Any) -> Response:
    svc = services()
    rows = await svc.store.list_uptime_checks(guard.org_id(), svc.clock.now(), limit=100, offset=0)
    return await page(
        "uptime.html",
        status,
        checks=rows,
        can_manage=guard.current().may(Action.MANAGE_WORK),
        **context,
    )


@bp.get("/uptime-checks")
@guard.signed_in()
async def checks() -> Any:
    return await uptime_page()


@bp.post("/uptime-checks")
@guard.signed_in(Action.MANAGE_WORK)
async def add() -> Any:
    form = await guard.posted()
    payload: dict[str, Any] = {
        "name": form.get("name", "").strip() or None,
        "url": form.get("url", "").strip() or None,
        "keyword": form.get("keyword", "").strip() or None,
    }
    interval = form.get("interval_seconds", "").strip()
    payload["interval_seconds"] = int(interval) if interval.isdigit() else None
    back = {"values": form_values(form)}
    try:
        guard.check_form(form)
        if payload["interval_seconds"] is None:
            raise InvalidInput(
                "validation_error", "invalid input", {"interval_seconds": ["a whole number"]}
            )
        created = await services().uptime.create(guard.org_id(), payload)
    except guard.StaleForm:
        return await uptime_page(403, form_error=STALE_FORM, **back)
    except InvalidInput as exc:
        return await uptime_page(422, errors=exc.details or {}, form_error=exc.message, **back)
    audit("POST /api/v1/uptime-checks", created.value["id"])
    return to("/uptime-checks", "check_added")


async def _act(check_id: str, change: dict[str, Any] | None, flash: str) -> Any:
    cid = page_id(check_id)
    svc = services()
    await svc.store.get_uptime_check(guard.org_id(), cid, svc.clock.now())  # 404 first
    try:
        await guard.read_form()
    except guard.StaleForm:
        return await uptime_page(403, form_error=STALE_FORM)
    if change is None:
        await svc.uptime.delete(guard.org_id(), cid)
        audit("DELETE /api/v1/uptime-checks/{check_id}", cid)
    else:
        await svc.uptime.update(guard.org_id(), cid, change)
        audit("PATCH /api/v1/uptime-checks/{check_id}", cid)
    return to("/uptime-checks", flash)


@bp.post("/uptime-checks/<check_id>/pause")
@guard.signed_in(Action.MANAGE_WORK)
async def pause(check_id: str) -> Any:
    return await _act(check_id, {"status": "paused"}, "check_paused")


@bp.post("/uptime-checks/<check_id>/resume")
@guard.signed_in(Action.MANAGE_WORK)
async def resume(check_id: str) -> Any:
    return await _act(check_id, {"status": "new"}, "check_resumed")


@bp.post("/uptime-checks/<check_id>/delete")
@guard.signed_in(Action.MANAGE_WORK)
async def delete(check_id: str) -> Any:
    return await _act(check_id, None, "check_deleted")
