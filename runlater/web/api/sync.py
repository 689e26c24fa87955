"""``PUT /api/v1/sync``: declarative tasks, matched by name, applied in one transaction
(``runlater.domain.sync`` decides); ``?dry_run=true`` runs the same transaction and rolls it
back."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, jsonify, request
from quart_schema import document_querystring, document_request, document_response

from runlater.schemas.common import DataWarnings
from runlater.schemas.sync import SyncQuery, SyncRequest, SyncResult, parse_dry_run
from runlater.web import openapi
from runlater.web.api.common import json_body, with_warnings
from runlater.web.auth import org_id
from runlater.web.context import services

bp = Blueprint("sync", __name__)


@bp.put("/sync")
@document_querystring(SyncQuery)
@document_request(SyncRequest)
@document_response(DataWarnings[SyncResult], 200)
@openapi.errors("url_not_allowed", "limit_exceeded")
async def sync() -> Any:
    """Make the organization's tasks match a declared list, matched by name."""
    dry_run = parse_dry_run(request.args.get("dry_run"))
    synced = await services().tasks.sync(org_id(), await json_body(), dry_run=dry_run)
    result = synced.value
    changes = {
        "created": result.created,
        "updated": result.updated,
        "deleted": result.deleted,
        "unchanged": result.unchanged,
    }
    body = {"data": {"dry_run": dry_run, "tasks": changes}}
    return jsonify(with_warnings(body, synced.warnings))
