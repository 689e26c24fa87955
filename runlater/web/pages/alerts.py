"""Notifications in the browser: channels (add, send a test, delete) with what each was sent,
the notification log (sent, failed, suppressed and why), maintenance windows (add, end), and
the public status page's settings — all through the same services as the API."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from quart import Blueprint, Response

from runlater.domain.people import Action
from runlater.errors import InvalidInput, NotFound
from runlater.schemas.notifications import EVENTS
from runlater.web.context import services
from runlater.web.pages import guard
from runlater.web.pages.ids import page_id
from runlater.web.pages.render import STALE_FORM, audit, form_values, page, to

bp = Blueprint("alert_pages", __name__)

LOG_SHOWN = 50


async def alerts_page(status: int = 200, **context: Any) -> Response:
    store, org = services().store, guard.org_id()
    channels = await store.list_channels(org)
    log = await store.list_notifications(org, limit=LOG_SHOWN, offset=0)
    names = {c["id"]: c["name"] for c in channels}
    return await page(
        "alerts.html",
        status,
        channels=channels,
        log=[{**n, "channel": names.get(n["channel_id"])} for n in log],
        windows=await store.list_windows(org),
        events=EVENTS,
        can_manage=guard.current().may(Action.MANAGE_WORK),
        **context,
    )


@bp.get("/notifications")
@guard.signed_in()
async def alerts() -> Any:
    return await alerts_page()


@bp.post("/notifications/channels")
@guard.signed_in(Action.MANAGE_WORK)
async def add_channel() -> Any:
    form = await guard.posted()
    payload: dict[str, Any] = {
        "name": form.get("name", "").strip() or None,
        "type": form.get("type", "email"),
        "events": form.getlist("events") or None,
    }
    if form.get("target", "").strip():
        payload["target"] = form.get("target", "").strip()
    back = {"channel_values": form_values(form)}
    try:
        guard.check_form(form)
        created = await services().notifications.create_channel(guard.org_id(), payload)
    except guard.StaleForm:
        return await alerts_page(403, form_error=STALE_FORM, **back)
    except InvalidInput as exc:
        return await alerts_page(422, channel_errors=exc.details or {}, form_error=exc.message,
                                 **back)  # fmt: skip
    audit("POST /api/v1/notification-channels", created.value["id"])
    return to("/notifications", "channel_added")


async def _channel_action(channel_id: str, test: bool) -> Any:
    cid: UUID = page_id(channel_id)
    org = guard.org_id()
    await services().store.get_channel(org, cid)  # 404 before the form
    try:
        await guard.read_form()
    except guard.StaleForm:
        return await alerts_page(403, form_error=STALE_FORM)
    if test:
        name = (await services().store.get_organization_usage(org))["name"]
        await services().notifications.test_channel(org, name, cid)
        audit("POST /api/v1/notification-channels/{channel_id}/test", cid)
        return to("/notifications", "channel_tested")
    await services().notifications.delete_channel(org, cid)
    audit("DELETE /api/v1/notification-channels/{channel_id}", cid)
    return to("/notifications", "channel_deleted")


@bp.post("/notifications/channels/<channel_id>/test")
@guard.signed_in(Action.MANAGE_WORK)
async def test_channel(channel_id: str) -> Any:
    return await _channel_action(channel_id, test=True)


@bp.post("/notifications/channels/<channel_id>/delete")
@guard.signed_in(Action.MANAGE_WORK)
async def delete_channel(channel_id: str) -> Any:
    return await _channel_action(channel_id, test=False)


@bp.post("/notifications/windows")
@guard.signed_in(Action.MANAGE_WORK)
async def add_window() -> Any:
    form = await guard.posted()
    payload: dict[str, Any] = {"reason": form.get("reason", "").strip() or None}
    if form.get("kind") == "recurring":
        payload["cron"] = form.get("cron", "").strip() or None
        payload["timezone"] = form.get("timezone", "").strip() or "UTC"
        minutes = form.get("duration_minutes", "").strip()
        payload["duration_minutes"] = int(minutes) if minutes.isdigit() else None
    else:
        payload["ends_at"] = form.get("ends_at", "").strip() or None
    back = {"window_values": form_values(form)}
    try:
        guard.check_form(form)
        row = await services().notifications.create_window(guard.org_id(), payload)
    except guard.StaleForm:
        return await alerts_page(403, form_error=STALE_FORM, **back)
    except InvalidInput as exc:
        return await alerts_page(422, window_errors=exc.details or {}, form_error=exc.message,
                                 **back)  # fmt: skip
    audit("POST /api/v1/maintenance-windows", row["id"])
    return to("/notifications", "window_added")


@bp.post("/notifications/windows/<window_id>/end")
@guard.signed_in(Action.MANAGE_WORK)
async def end_window(window_id: str) -> Any:
    wid = page_id(window_id)
    try:
        await guard.read_form()
    except guard.StaleForm:
        return await alerts_page(403, form_error=STALE_FORM)
    try:
        await services().notifications.delete_window(guard.org_id(), wid)
    except NotFound:
        return await page("not_found.html", 404)
    audit("DELETE /api/v1/maintenance-windows/{window_id}", wid)
    return to("/notifications", "window_ended")


# ---------------------------------------------------------------------- status page settings


async def status_settings_page(status: int = 200, **context: Any) -> Response:
    store, org = services().store, guard.org_id()
    current = await store.get_status_page(org)
    chosen = {(i["type"], str(i.get("id") or i.get("name"))) for i in current["items"]}
    options = [
        ("monitor", str(m["id"]), m["name"])
        for m in await store.list_monitors(org, limit=100, offset=0)
    ]
    options += [
        ("uptime_check", str(c["id"]), c["name"])
        for c in await store.list_uptime_checks(org, services().clock.now(), limit=100, offset=0)
    ]
    options += [("queue", q["name"], q["name"]) for q in await store.list_queues(org)]
    return await page(
        "status_settings.html",
        status,
        current=current,
        options=[{"type": t, "ref": r, "name": n, "on": (t, r) in chosen} for t, r, n in options],
        url=f"{services().settings.public_base_url}/s/{current['slug']}",
        can_manage=guard.current().may(Action.MANAGE_WORK),
        **context,
    )


@bp.get("/status-page")
@guard.signed_in()
async def status_settings() -> Any:
    return await status_settings_page()


@bp.post("/status-page")
@guard.signed_in(Action.MANAGE_WORK)
async def save_status_settings() -> Any:
    form = await guard.posted()
    items = []
    for value in form.getlist("items"):
        kind, _, ref = value.partition(":")
        items.append({"type": kind, "name": ref} if kind == "queue" else {"type": kind, "id": ref})
    payload = {
        "enabled": form.get("enabled") == "on",
        "slug": form.get("slug", "").strip(),
        "title": form.get("title", "").strip(),
        "items": items,
    }
    try:
        guard.check_form(form)
        await services().status_pages.put(guard.org_id(), payload)
    except guard.StaleForm:
        return await status_settings_page(403, form_error=STALE_FORM)
    except InvalidInput as exc:
        return await status_settings_page(422, errors=exc.details or {}, form_error=exc.message)
    audit("PUT /api/v1/status-page")
    return to("/status-page", "status_page_saved")
