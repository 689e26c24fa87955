"""The audit log: every successful mutating API call, and ``GET /api/v1/audit-log``.

Entries are written after the response is made (one insert per mutating call). If that insert
fails the call still answers as it would have — the change itself is already committed, and
turning it into an error would invite a retry that repeats it — and the failure is logged.
"""

from __future__ import annotations

import logging
from typing import Any

from quart import Blueprint, Response, current_app, g, jsonify, request

from runlater.errors import StoreError
from runlater.web import serialize
from runlater.web.api.common import page, pagination
from runlater.web.auth import org_id

log = logging.getLogger("runlater.web.audit")

bp = Blueprint("audit", __name__)

MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_CREATED_ID_KEYS = ("id", "task_id", "execution_id")


async def _resource_id(response: Response) -> str | None:
    """The id the call was about: the one in the path, else the one it created."""
    if request.view_args:
        return str(next(iter(request.view_args.values())))
    if response.mimetype == "application/json":
        body = await response.get_json()
        data = body.get("data") if isinstance(body, dict) else None
        if isinstance(data, dict):
            for key in _CREATED_ID_KEYS:
                if data.get(key):
                    return str(data[key])
    return None


async def record(response: Response) -> Response:
    """``after_request`` hook of the API blueprint."""
    if request.method not in MUTATING or response.status_code >= 400 or "org_id" not in g:
        return response
    if g.get("idempotency_replayed"):  # the first response was audited; nothing changed now
        return response
    rule = request.url_rule.rule if request.url_rule is not None else request.path
    try:
        await current_app.config["STORE"].record_audit(
            g.org_id,
            actor_type="api_key",
            actor_id=g.get("api_key_id"),
            action=f"{request.method} {rule}",
            resource_id=await _resource_id(response),
            status_code=response.status_code,
            ip=request.remote_addr,
        )
    except StoreError as exc:
        log.error("audit entry not written action=%s %s error=%s", request.method, rule, exc)
    return response


def _entry(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "actor": {
            "type": row["actor_type"],
            "id": str(row["actor_id"]) if row["actor_id"] else None,
        },
        "action": row["action"],
        "resource_id": row["resource_id"],
        "status_code": row["status_code"],
        "ip": row["ip"],
        "inserted_at": serialize.ts(row["inserted_at"]),
    }


@bp.get("/audit-log")
async def audit_log() -> Any:
    limit, offset = pagination()
    rows = await current_app.config["STORE"].list_audit_log(org_id(), limit=limit, offset=offset)
    return jsonify(page([_entry(r) for r in rows], rows, limit, offset))
