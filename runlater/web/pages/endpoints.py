"""Inbound endpoints in the browser: the list, an endpoint's page (its inbound URL, settings and
the events it received, live on ``endpoint.event_received``), an event's page (request line,
headers, the body shown safely, the forwards and their outcomes) with a Replay button; create,
edit, enable, disable and delete — through ``InboundService`` like ``/api/v1/endpoints``."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID

from quart import Blueprint, Response

from runlater.domain.people import Action
from runlater.errors import InvalidInput, LimitExceeded, invalid
from runlater.store.inbound import EventFilter
from runlater.web.api.endpoints import inbound_url
from runlater.web.context import services
from runlater.web.pages import guard
from runlater.web.pages.bodies import shown_body, size_text
from runlater.web.pages.ids import page_id
from runlater.web.pages.render import STALE_FORM, audit, form_values, page, to

bp = Blueprint("endpoint_pages", __name__)

EVENTS_SHOWN = 50
ACTIVITY_WINDOW = timedelta(hours=24)
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
SCHEMES = {
    "stripe": "Stripe (Stripe-Signature)",
    "github": "GitHub (X-Hub-Signature-256)",
    "standard_webhooks": "Standard Webhooks (webhook-signature)",
    "hmac": "HMAC-SHA256 of the body in a header of your choice",
}
CHECKBOXES = ("use_queue", "forward_authorization", "notify_on_failure", "notify_on_recovery")
INT_FIELDS = ("retry_attempts", "alert_after")
OPTIONAL_TEXT = ("forward_body", "on_failure_url", "on_recovery_url")
NEW_VALUES = {
    "retry_attempts": "5",
    "alert_after": "1",
    "notify_on_failure": "on",
    "notify_on_recovery": "on",
    "verify_encoding": "hex",
    "verify_tolerance_s": "300",
}


def _lines(raw: str) -> list[str]:
    return [line.strip() for line in raw.splitlines() if line.strip()]


def _headers(raw: str) -> dict[str, str]:
    headers: dict[str, str] = {}
    for number, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        name, sep, value = line.partition(":")
        if not sep or not name.strip():
            raise invalid(
                {"forward_headers": [f"line {number}: write one header per line, Name: value"]}
            )
        headers[name.strip()] = value.strip()
    return headers


def _verify(form: Any, current: dict[str, Any] | None) -> dict[str, Any] | None:
    """The ``verify`` object the form stands for; on an edit, a secret left empty keeps the
    current one (the form never shows it)."""
    scheme = form.get("verify_scheme", "")
    if scheme not in SCHEMES:
        return None
    secret = form.get("verify_secret", "")
    if not secret and current is not None and current.get("verify_scheme"):
        secret = current["verify_secret"]
    verify: dict[str, Any] = {"scheme": scheme, "secret": secret}
    if scheme == "hmac":
        verify["header"] = form.get("verify_header", "").strip() or None
        verify["encoding"] = form.get("verify_encoding") or "hex"
    tolerance = form.get("verify_tolerance_s", "").strip()
    if scheme in ("stripe", "standard_webhooks") and tolerance:
        try:
            verify["tolerance_s"] = int(tolerance)
        except ValueError:
            raise invalid({"verify": ["the tolerance must be a whole number of seconds"]}) from None
    return verify


def payload_of(form: Any, current: dict[str, Any] | None = None) -> dict[str, Any]:
    """The API payload an endpoint form stands for: every field (an edit sends them all, as a
    ``PATCH`` may). Empty optional fields are null: the body as received, no extra URL."""
    payload: dict[str, Any] = {
        "name": form.get("name", "").strip() or None,
        "forward_urls": _lines(form.get("forward_urls", "")),
        "forward_method": form.get("forward_method", "") or None,
    }
    slug = form.get("slug", "").strip()
    if slug or current is None:
        payload["slug"] = slug or None
    errors: dict[str, list[str]] = {}
    for field in INT_FIELDS:
        value = form.get(field, "").strip()
        if value:
            try:
                payload[field] = int(value)
            except ValueError:
                errors[field] = ["must be a whole number"]
    for flag in CHECKBOXES:
        payload[flag] = form.get(flag) == "on"
    for field in OPTIONAL_TEXT:
        value = form.get(field, "")
        payload[field] = (value if field == "forward_body" else value.strip()) or None
    if current is not None:
        payload["enabled"] = form.get("enabled") == "on"
    try:
        payload["forward_headers"] = _headers(form.get("forward_headers", ""))
    except InvalidInput as exc:
        errors.update(exc.details or {})
    try:
        payload["verify"] = _verify(form, current)
    except InvalidInput as exc:
        errors.update(exc.details or {})
    if errors:
        raise invalid(errors)
    return payload


def values_of(row: dict[str, Any]) -> dict[str, str]:
    """An endpoint's fields as the form shows them (never its verification secret)."""
    values = {
        "name": row["name"],
        "slug": row["slug"],
        "forward_urls": "\n".join(row["forward_urls"]),
        "forward_method": row["forward_method"] or "",
        "forward_headers": "\n".join(f"{k}: {v}" for k, v in row["forward_headers"].items()),
        "forward_body": row["forward_body"] or "",
        "on_failure_url": row["on_failure_url"] or "",
        "on_recovery_url": row["on_recovery_url"] or "",
        "verify_scheme": row["verify_scheme"] or "",
        "verify_header": row["verify_header"] or "",
        "verify_encoding": row["verify_encoding"] or "hex",
        "verify_tolerance_s": str(row["verify_tolerance_s"]),
        "enabled": "on" if row["enabled"] else "",
    }
    for field in INT_FIELDS:
        values[field] = str(row[field])
    for flag in CHECKBOXES:
        values[flag] = "on" if row[flag] else ""
    return values


def as_form(details: dict[str, list[str]] | None) -> dict[str, list[str]]:
    """The API's error details under the form's field names: ``forward_urls[2]`` becomes a
    message of the URLs field naming the line."""
    found: dict[str, list[str]] = {}
    for key, messages in (details or {}).items():
        name, index = key, None
        if key.startswith("forward_urls[") and key.endswith("]"):
            name, index = "forward_urls", key[len("forward_urls[") : -1]
        for message in messages:
            shown = f"line {int(index) + 1}: {message}" if index and index.isdigit() else message
            found.setdefault(name, []).append(shown)
    return found


async def form_page(status: int = 200, **context: Any) -> Response:
    context.setdefault("values", dict(NEW_VALUES))
    return await page("endpoint_form.html", status, methods=METHODS, schemes=SCHEMES, **context)


def _url(row: dict[str, Any]) -> str:
    return inbound_url(services().settings.public_base_url, row["slug"])


@bp.get("/endpoints")
@guard.signed_in()
async def endpoints() -> Any:
    org = guard.org_id()
    rows = await services().store.list_endpoints(org, limit=100, offset=0)
    since = services().clock.now() - ACTIVITY_WINDOW
    activity = await services().inbound.activity(org, since)
    shown = [{**r, "inbound_url": _url(r), "activity": activity.get(r["id"], {})} for r in rows]
    return await page(
        "endpoints.html",
        endpoints=shown,
        can_manage=guard.current().may(Action.MANAGE_WORK),
    )


@bp.get("/endpoints/new")
@guard.signed_in(Action.MANAGE_WORK)
async def new() -> Any:
    return await form_page(title="New endpoint", action="/endpoints/new")


@bp.post("/endpoints/new")
@guard.signed_in(Action.MANAGE_WORK)
async def create() -> Any:
    form = await guard.posted()
    back = {"title": "New endpoint", "action": "/endpoints/new", "values": form_values(form)}
    try:
        guard.check_form(form)
        created = await services().inbound.create(guard.org_id(), payload_of(form))
    except guard.StaleForm:
        return await form_page(403, form_error=STALE_FORM, **back)
    except InvalidInput as exc:
        return await form_page(422, errors=as_form(exc.details), form_error=exc.message, **back)
    endpoint_id = created.value["id"]
    audit("POST /api/v1/endpoints", endpoint_id)
    return to(f"/endpoints/{endpoint_id}", "endpoint_created")


@bp.get("/endpoints/<endpoint_id>")
@guard.signed_in()
async def endpoint(endpoint_id: str) -> Any:
    org, eid = guard.org_id(), page_id(endpoint_id)
    row = await services().store.get_endpoint(org, eid)
    events = await services().inbound.list_events(
        org, eid, EventFilter(), limit=EVENTS_SHOWN, offset=0
    )
    forwards = await services().inbound.forwards_of(org, [e["id"] for e in events])
    shown = [
        {**e, "size_text": size_text(e["size"]), "forwards": forwards.get(e["id"], [])}
        for e in events
    ]
    person = guard.current()
    return await page(
        "endpoint.html",
        endpoint=row,
        inbound_url=_url(row),
        events=shown,
        total=events[0]["total"] if events else 0,
        can_manage=person.may(Action.MANAGE_WORK),
        can_run=person.may(Action.RUN),
    )


@bp.get("/endpoints/<endpoint_id>/edit")
@guard.signed_in(Action.MANAGE_WORK)
async def edit(endpoint_id: str) -> Any:
    row = await services().store.get_endpoint(guard.org_id(), page_id(endpoint_id))
    return await form_page(
        title=f"Edit {row['name']}", action=f"/endpoints/{row['id']}/edit",
        values=values_of(row), editing=True, has_secret=bool(row["verify_scheme"]),
    )  # fmt: skip


@bp.post("/endpoints/<endpoint_id>/edit")
@guard.signed_in(Action.MANAGE_WORK)
async def update(endpoint_id: str) -> Any:
    eid: UUID = page_id(endpoint_id)
    row = await services().store.get_endpoint(guard.org_id(), eid)  # 404 before the form
    form = await guard.posted()
    back = {"title": f"Edit {row['name']}", "action": f"/endpoints/{eid}/edit",
            "values": form_values(form), "editing": True,
            "has_secret": bool(row["verify_scheme"])}  # fmt: skip
    try:
        guard.check_form(form)
        await services().inbound.update(guard.org_id(), eid, payload_of(form, row))
    except guard.StaleForm:
        return await form_page(403, form_error=STALE_FORM, **back)
    except InvalidInput as exc:
        return await form_page(422, errors=as_form(exc.details), form_error=exc.message, **back)
    audit("PATCH /api/v1/endpoints/{endpoint_id}", eid)
    return to(f"/endpoints/{eid}", "endpoint_saved")


async def _act(endpoint_id: str, enabled: bool | None, flash: str) -> Any:
    org, eid = guard.org_id(), page_id(endpoint_id)
    await services().store.get_endpoint(org, eid)  # 404 before the form
    try:
        await guard.read_form()
    except guard.StaleForm:
        return await page("refused.html", 403, message=STALE_FORM)
    if enabled is None:
        await services().inbound.delete(org, eid)
        audit("DELETE /api/v1/endpoints/{endpoint_id}", eid)
        return to("/endpoints", flash)
    await services().inbound.update(org, eid, {"enabled": enabled})
    audit("PATCH /api/v1/endpoints/{endpoint_id}", eid)
    return to(f"/endpoints/{eid}", flash)


@bp.post("/endpoints/<endpoint_id>/enable")
@guard.signed_in(Action.MANAGE_WORK)
async def enable(endpoint_id: str) -> Any:
    return await _act(endpoint_id, True, "endpoint_enabled")


@bp.post("/endpoints/<endpoint_id>/disable")
@guard.signed_in(Action.MANAGE_WORK)
async def disable(endpoint_id: str) -> Any:
    return await _act(endpoint_id, False, "endpoint_disabled")


@bp.post("/endpoints/<endpoint_id>/delete")
@guard.signed_in(Action.MANAGE_WORK)
async def delete(endpoint_id: str) -> Any:
    return await _act(endpoint_id, None, "endpoint_deleted")


async def event_page(endpoint_id: str, event_id: str, status: int = 200, **context: Any) -> Any:
    org, eid = guard.org_id(), page_id(endpoint_id)
    row = await services().store.get_endpoint(org, eid)
    event = await services().inbound.get_event(org, eid, page_id(event_id))
    target = f"/in/{row['slug']}{event['path']}" + (f"?{event['query']}" if event["query"] else "")
    return await page(
        "endpoint_event.html",
        status,
        endpoint=row,
        event=event,
        request_target=target,
        headers=sorted(event["headers"].items()),
        body=shown_body(bytes(event["body"]), event["body_is_text"]),
        size_text=size_text(event["size"]),
        can_run=guard.current().may(Action.RUN),
        **context,
    )


@bp.get("/endpoints/<endpoint_id>/events/<event_id>")
@guard.signed_in()
async def event(endpoint_id: str, event_id: str) -> Any:
    return await event_page(endpoint_id, event_id)


@bp.get("/endpoints/<endpoint_id>/events/<event_id>/body")
@guard.signed_in()
async def event_body(endpoint_id: str, event_id: str) -> Any:
    """The raw body, byte-exact, as a download (never shown inline by the browser)."""
    found = await services().inbound.get_event(
        guard.org_id(), page_id(endpoint_id), page_id(event_id)
    )
    return Response(
        bytes(found["body"]),
        status=200,
        content_type="application/octet-stream",
        headers={
            "Content-Disposition": f'attachment; filename="event-{found["id"]}.bin"',
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-store",
        },
    )


@bp.post("/endpoints/<endpoint_id>/events/<event_id>/replay")
@guard.signed_in(Action.RUN)
async def replay(endpoint_id: str, event_id: str) -> Any:
    org, eid, evid = guard.org_id(), page_id(endpoint_id), page_id(event_id)
    await services().inbound.get_event(org, eid, evid)  # 404 before the form
    try:
        await guard.read_form()
    except guard.StaleForm:
        return await event_page(endpoint_id, event_id, 403, form_error=STALE_FORM)
    try:
        done = await services().inbound.replay_event(org, eid, evid)
    except LimitExceeded as exc:
        return await event_page(
            endpoint_id, event_id, 422, form_error=f"Nothing was replayed: {exc.message}"
        )
    audit("POST /api/v1/endpoints/{endpoint_id}/events/{event_id}/replay", evid)
    return to(f"/endpoints/{eid}/events/{evid}", f"replayed_{done['forwards']}")
