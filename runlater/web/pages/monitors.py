"""Heartbeat monitors in the browser: the list and a monitor's page (state, ping URL, the ping
log and a run-duration chart), live on ``monitor.changed``; create and edit with the task
form's cron helper, pause, resume and delete — through ``MonitorService`` like the API."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from quart import Blueprint, Response

from runlater.domain.people import Action
from runlater.errors import InvalidInput
from runlater.web import serialize
from runlater.web.context import services
from runlater.web.pages import guard
from runlater.web.pages.detail import SPARK_H, SPARK_W, duration_bars
from runlater.web.pages.ids import page_id
from runlater.web.pages.render import STALE_FORM, audit, form_values, page, to

bp = Blueprint("monitor_pages", __name__)

PINGS_SHOWN = 50
FORM_NAMES = {"cron_expression": "cron"}
INT_FIELDS = ("interval_seconds", "grace_period_seconds", "alert_after")


def run_bars(pings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The finished runs' bars (the newest ping comes first in ``pings``)."""
    return duration_bars(
        [
            (p["duration_ms"], p["kind"] == "success",
             f"{p['kind']} after {p['duration_ms'] / 1000:.1f} s")
            for p in reversed(pings)
            if p["duration_ms"] is not None
        ]
    )  # fmt: skip


def payload_of(form: Any) -> dict[str, Any]:
    """The API payload a monitor form stands for: one schedule (switching from one kind to
    the other clears the first, as ``PATCH`` does), and the numbers given."""
    payload: dict[str, Any] = {"name": form.get("name", "").strip() or None}
    errors: dict[str, list[str]] = {}
    cron = form.get("schedule", "interval") == "cron"
    if cron:
        payload["cron_expression"] = form.get("cron", "").strip() or None
        payload["timezone"] = form.get("timezone", "").strip() or "UTC"
    for field in INT_FIELDS:
        if field == "interval_seconds" and cron:
            continue
        value = form.get(field, "").strip()
        if not value:
            if field == "interval_seconds":
                errors[field] = ["is required for an interval schedule"]
            continue
        try:
            payload[field] = int(value)
        except ValueError:
            errors[field] = ["must be a whole number"]
    for flag in ("notify_on_failure", "notify_on_recovery"):
        payload[flag] = form.get(flag) == "on"
    if errors:
        raise InvalidInput("validation_error", "invalid input", errors)
    return payload


def values_of(row: dict[str, Any]) -> dict[str, str]:
    return {
        "name": row["name"],
        "schedule": row["schedule_type"],
        "interval_seconds": str(row["interval_seconds"] or ""),
        "cron": row["cron_expression"] or "",
        "timezone": row["timezone"],
        "grace_period_seconds": str(row["grace_period_seconds"]),
        "alert_after": str(row["alert_after"]),
        "notify_on_failure": "on" if row["notify_on_failure"] else "",
        "notify_on_recovery": "on" if row["notify_on_recovery"] else "",
    }


def as_form(details: dict[str, list[str]] | None) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for key, messages in (details or {}).items():
        found.setdefault(FORM_NAMES.get(key, key), []).extend(messages)
    return found


async def form_page(status: int = 200, **context: Any) -> Response:
    context.setdefault("values", {"schedule": "interval", "interval_seconds": "86400",
                                  "grace_period_seconds": "300", "alert_after": "1",
                                  "timezone": "UTC", "notify_on_failure": "on",
                                  "notify_on_recovery": "on"})  # fmt: skip
    return await page("monitor_form.html", status, **context)


@bp.get("/monitors")
@guard.signed_in()
async def monitors() -> Any:
    rows = await services().store.list_monitors(guard.org_id(), limit=100, offset=0)
    return await page(
        "monitors.html",
        monitors=rows,
        can_manage=guard.current().may(Action.MANAGE_WORK),
    )


@bp.get("/monitors/new")
@guard.signed_in(Action.MANAGE_WORK)
async def new() -> Any:
    return await form_page(title="New monitor", action="/monitors/new")


@bp.post("/monitors/new")
@guard.signed_in(Action.MANAGE_WORK)
async def create() -> Any:
    form = await guard.posted()
    back = {"title": "New monitor", "action": "/monitors/new", "values": form_values(form)}
    try:
        guard.check_form(form)
        created = await services().monitors.create(guard.org_id(), payload_of(form))
    except guard.StaleForm:
        return await form_page(403, form_error=STALE_FORM, **back)
    except InvalidInput as exc:
        return await form_page(422, errors=as_form(exc.details), form_error=exc.message, **back)
    monitor_id = created.value["id"]
    audit("POST /api/v1/monitors", monitor_id)
    return to(f"/monitors/{monitor_id}", "monitor_created")


@bp.get("/monitors/<monitor_id>")
@guard.signed_in()
async def monitor(monitor_id: str) -> Any:
    store, org, mid = services().store, guard.org_id(), page_id(monitor_id)
    row = await store.get_monitor(org, mid)
    pings = await store.list_monitor_pings(org, mid, limit=PINGS_SHOWN, offset=0)
    shown = [{**p, "text": serialize.monitor_ping(p)["body"][:300]} for p in pings]
    return await page(
        "monitor.html",
        monitor=row,
        ping_url=f"{services().settings.public_base_url}/ping/{row['ping_token']}",
        pings=shown,
        bars=run_bars(pings),
        chart=(SPARK_W, SPARK_H),
        can_manage=guard.current().may(Action.MANAGE_WORK),
    )


@bp.get("/monitors/<monitor_id>/edit")
@guard.signed_in(Action.MANAGE_WORK)
async def edit(monitor_id: str) -> Any:
    row = await services().store.get_monitor(guard.org_id(), page_id(monitor_id))
    return await form_page(
        title=f"Edit {row['name']}", action=f"/monitors/{row['id']}/edit",
        values=values_of(row), editing=True,
    )  # fmt: skip


@bp.post("/monitors/<monitor_id>/edit")
@guard.signed_in(Action.MANAGE_WORK)
async def update(monitor_id: str) -> Any:
    mid: UUID = page_id(monitor_id)
    row = await services().store.get_monitor(guard.org_id(), mid)  # 404 before the form
    form = await guard.posted()
    back = {"title": f"Edit {row['name']}", "action": f"/monitors/{mid}/edit",
            "values": form_values(form), "editing": True}  # fmt: skip
    try:
        guard.check_form(form)
        await services().monitors.update(guard.org_id(), mid, payload_of(form))
    except guard.StaleForm:
        return await form_page(403, form_error=STALE_FORM, **back)
    except InvalidInput as exc:
        return await form_page(422, errors=as_form(exc.details), form_error=exc.message, **back)
    audit("PATCH /api/v1/monitors/{monitor_id}", mid)
    return to(f"/monitors/{mid}", "monitor_saved")


async def _act(monitor_id: str, change: dict[str, Any] | None, flash: str) -> Any:
    mid = page_id(monitor_id)
    await services().store.get_monitor(guard.org_id(), mid)  # 404 before the form
    try:
        await guard.read_form()
    except guard.StaleForm:
        return await page("refused.html", 403, message=STALE_FORM)
    if change is None:
        await services().monitors.delete(guard.org_id(), mid)
        audit("DELETE /api/v1/monitors/{monitor_id}", mid)
        return to("/monitors", flash)
    await services().monitors.update(guard.org_id(), mid, change)
    audit("PATCH /api/v1/monitors/{monitor_id}", mid)
    return to(f"/monitors/{mid}", flash)


@bp.post("/monitors/<monitor_id>/pause")
@guard.signed_in(Action.MANAGE_WORK)
async def pause(monitor_id: str) -> Any:
    return await _act(monitor_id, {"status": "paused"}, "monitor_paused")


@bp.post("/monitors/<monitor_id>/resume")
@guard.signed_in(Action.MANAGE_WORK)
async def resume(monitor_id: str) -> Any:
    return await _act(monitor_id, {"status": "new"}, "monitor_resumed")


@bp.post("/monitors/<monitor_id>/delete")
@guard.signed_in(Action.MANAGE_WORK)
async def delete(monitor_id: str) -> Any:
    return await _act(monitor_id, None, "monitor_deleted")
