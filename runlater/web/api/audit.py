"""The audit log: every successful mutating API call, and ``GET /api/v1/audit-log``.

The entry is written in the request's own transaction, with the change it records
(``runlater/web/transaction.py``): an accepted change always has its entry, and an entry
never records a change that did not happen.
"""

from __future__ import annotations

import logging
from typing import Any

from quart import Blueprint, Response, g, jsonify, request
from quart_schema import document_querystring, document_response

from runlater.schemas.audit import AuditEntry
from runlater.schemas.common import Page, PageQuery
from runlater.store.transaction import AuditRecord
from runlater.web import serialize
from runlater.web.api.common import page, pagination
from runlater.web.auth import org_id
from runlater.web.context import services

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
    # Written by the request's transaction when it commits (runlater/web/transaction.py).
    g.audit_entry = AuditRecord(
        g.org_id,
        "api_key",
        g.get("api_key_id"),
        f"{request.method} {rule}",
        await _resource_id(response),
        response.status_code,
        request.remote_addr,
    )
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
@document_querystring(PageQuery)
@document_response(Page[AuditEntry], 200)
async def audit_log() -> Any:
    """The organization's audit log: every successful mutating API call, newest first."""
    limit, offset = pagination()
    rows = await services().store.list_audit_log(org_id(), limit=limit, offset=offset)
    return jsonify(page([_entry(r) for r in rows], rows, limit, offset))
