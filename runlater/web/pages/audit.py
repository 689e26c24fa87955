"""The audit log, filterable by action and by who did it (a person or an API key)."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, request

from runlater.web.context import services
from runlater.web.pages import guard
from runlater.web.pages.render import page

bp = Blueprint("audit_page", __name__)

PAGE_SIZE = 50
ACTOR_TYPES = ("user", "api_key")


@bp.get("/audit-log")
@guard.signed_in()
async def audit_log() -> Any:
    action = request.args.get("action", "").strip()[:200] or None
    actor = request.args.get("actor") if request.args.get("actor") in ACTOR_TYPES else None
    try:
        offset = max(0, min(int(request.args.get("offset", "0")), 1_000_000))
    except ValueError:
        offset = 0
    if action is not None and "\x00" in action:
        action = action.replace("\x00", "")
    rows = await services().store.search_audit_log(
        guard.org_id(), action=action, actor_type=actor, limit=PAGE_SIZE, offset=offset
    )
    total = rows[0]["total"] if rows else 0
    return await page(
        "audit.html",
        entries=rows,
        action=action or "",
        actor=actor or "",
        offset=offset,
        total=total,
        page_size=PAGE_SIZE,
    )
