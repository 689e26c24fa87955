"""``PUT /api/v1/sync``: declarative tasks, matched by name, applied in one transaction
(``runlater.domain.sync`` decides); ``?dry_run=true`` runs the same transaction and rolls it
back."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, jsonify, request
from quart_schema import document_querystring, document_request, document_response

from runlater.schemas.common import DataWarnings
from runlater.schemas.sync import (
    SyncQuery,
    SyncRequest,
    SyncResult,
    parse_dry_run,
    parse_sync,
)
from runlater.store.bulk import TaskSyncResult
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
    """Make the organization's tasks, monitors and inbound endpoints match declared lists,
    matched by name."""
    dry_run = parse_dry_run(request.args.get("dry_run"))
    draft = parse_sync(await json_body())
    org = org_id()
    # Both kinds run inside the request's one transaction: an invalid monitor rolls the
    # tasks back too.
    synced = await services().tasks.sync_declared(org, draft, dry_run=dry_run)
    monitors = await services().monitors.sync(org, draft, dry_run=dry_run)
    endpoints = await services().inbound.sync(org, draft, dry_run=dry_run)
    data: dict[str, Any] = {"dry_run": dry_run, "tasks": _changes(synced.value)}
    warnings = list(synced.warnings)
    if monitors is not None:
        data["monitors"] = _changes(monitors.value)
        warnings.extend(monitors.warnings)
    if endpoints is not None:
        data["endpoints"] = _changes(endpoints.value)
        warnings.extend(endpoints.warnings)
    return jsonify(with_warnings({"data": data}, warnings))


def _changes(result: TaskSyncResult) -> dict[str, list[str]]:
    return {
        "created": result.created,
        "updated": result.updated,
        "deleted": result.deleted,
        "unchanged": result.unchanged,
    }
