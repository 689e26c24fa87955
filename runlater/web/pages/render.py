"""Rendering the dashboard's pages: the common context, flash messages, forms given back.

A flash message travels in the cookie ``runlater_flash`` as a code from ``FLASH`` (never as
text a request could choose), shown once on the next page.
"""

from __future__ import annotations

from typing import Any

from quart import Response, g, render_template, request

from runlater import __version__
from runlater.store.transaction import AuditRecord
from runlater.web.context import services
from runlater.web.pages import guard

FLASH_COOKIE = "runlater_flash"
FLASH: dict[str, str] = {
    "signed_out": "You are signed out.",
    "switched": "Switched organization.",
    "renamed": "The organization's name is saved.",
    "rotated": "A new webhook secret is active; the old one keeps signing for 24 hours.",
    "upgraded": "Your organization is on Pro now. Our team will be in touch about billing.",
    "key_revoked": "The API key is revoked.",
    "invited": "The invitation is on its way.",
    "invitation_revoked": "The invitation is revoked.",
    "role_changed": "The role is changed.",
    "member_removed": "The member is removed; their sessions have ended.",
    "left": "You left the organization.",
    "joined": "Welcome! You joined the organization.",
    "signed_in": "You are signed in.",
    "bulk_enable": "The selected tasks are enabled.",
    "bulk_disable": "The selected tasks are disabled.",
    "bulk_run": "The selected tasks run now.",
    "bulk_delete": "The selected tasks are deleted; their pending runs are cancelled.",
    "one_enable": "The task is enabled.",
    "one_disable": "The task is disabled.",
    "one_run": "The task runs now.",
    "one_delete": "The task is deleted; its pending runs are cancelled.",
    "queue_paused": "The queue is paused: its items wait until it is resumed.",
    "queue_resumed": "The queue is resumed.",
    "retried": "The retries are queued; watch them run below.",
    "dead_letters_deleted": "The selected failures are deleted from the dead-letter queue.",
    "task_created": "The task is created.",
    "task_saved": "The task is saved.",
    "monitor_created": "The monitor is created: send its first ping from your job.",
    "monitor_saved": "The monitor is saved.",
    "monitor_paused": "The monitor is paused until its next ping.",
    "monitor_resumed": "The monitor is watched again from its next ping.",
    "monitor_deleted": "The monitor is deleted; its ping URL answers 404 from now on.",
    "channel_added": "The channel is added.",
    "channel_tested": "A test notification is on its way; its outcome shows below.",
    "channel_deleted": "The channel is deleted.",
    "window_added": "The maintenance window is added: what it mutes is recorded, not sent.",
    "window_ended": "The maintenance window is ended.",
    "status_page_saved": "The status page is saved.",
    "check_added": "The uptime check is added; its first check runs within one interval.",
    "check_paused": "The uptime check is paused.",
    "check_resumed": "The uptime check runs again.",
    "check_deleted": "The uptime check is deleted.",
    "endpoint_created": "The endpoint is created: point your webhook sender at its inbound URL.",
    "endpoint_saved": "The endpoint is saved.",
    "endpoint_enabled": "The endpoint is enabled: its inbound URL records requests again.",
    "endpoint_disabled": "The endpoint is disabled: its inbound URL answers 410 until enabled.",
    "endpoint_deleted": "The endpoint is deleted, with its events; its inbound URL answers 404.",
    # A replay says how many forwards it made (an endpoint has at most 10 forward URLs).
    **{
        f"replayed_{n}": f"The event is replayed to {n} URL{'' if n == 1 else 's'}."
        for n in range(11)
    },
}
STALE_FORM = "This form had expired, so nothing was saved. Check the values and send it again."


async def page(template: str, status: int = 200, **context: Any) -> Response:
    """``template`` with what every page shows: the person, the organization switcher, the
    CSRF token for its forms and the flash message."""
    flash_code = request.cookies.get(FLASH_COOKIE)
    context.setdefault("errors", {})
    context.setdefault("values", {})
    html = await render_template(
        template,
        person=g.get("person"),
        csrf_token=guard.csrf_token(),
        flash=FLASH.get(flash_code or ""),
        version=__version__,
        signup_open=services().settings.signup == "open",
        **context,
    )
    response = Response(html, status=status, content_type="text/html; charset=utf-8")
    if flash_code:
        response.delete_cookie(FLASH_COOKIE, path="/")
    return guard.remember_anonymous_csrf(response)


def to(path: str, flash: str | None = None) -> Response:
    """303 to ``path`` (after a form), with a flash message for the next page."""
    response = Response("", status=303, headers={"Location": path})
    if flash is not None:
        assert flash in FLASH
        response.set_cookie(
            FLASH_COOKIE, flash, path="/", httponly=True, samesite="Lax", max_age=60
        )
    return response


def form_values(form: Any) -> dict[str, str]:
    """The values to show again in a form given back (never its CSRF token)."""
    return {k: v for k, v in form.items() if k != guard.CSRF_FIELD}


def audit(action: str, resource_id: object = None, status: int = 303) -> None:
    """Record the action of this request in the audit log, as the API records its own; it is
    written by the request's transaction when it commits."""
    person = guard.current()
    g.audit_entry = AuditRecord(
        guard.org_id(),
        "user",
        person.user_id,
        action,
        None if resource_id is None else str(resource_id),
        status,
        request.remote_addr,
    )
