"""``/api/v1/monitors``: heartbeat monitors and the pings they received."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, jsonify
from quart_schema import document_request, document_response

from runlater.schemas.common import Data, DataWarnings, Page
from runlater.schemas.monitors import Monitor, MonitorFields, MonitorPing
from runlater.web import openapi, serialize
from runlater.web.api.common import json_body, page, pagination, parse_id, with_warnings
from runlater.web.auth import org_id
from runlater.web.context import services

bp = Blueprint("monitors", __name__)


def _out(row: dict[str, Any]) -> dict[str, Any]:
    return serialize.monitor(row, services().settings.public_base_url)


@bp.get("/monitors")
@document_response(Page[Monitor], 200)
async def list_monitors() -> Any:
    """List the organization's heartbeat monitors by name."""
    limit, offset = pagination()
    rows = await services().store.list_monitors(org_id(), limit=limit, offset=offset)
    return jsonify(page([_out(r) for r in rows], rows, limit, offset))


@bp.post("/monitors")
@document_request(MonitorFields)
@document_response(DataWarnings[Monitor], 201)
@openapi.errors("url_not_allowed")
async def create_monitor() -> Any:
    """Create a heartbeat monitor: ``name`` and one of ``interval_seconds`` or
    ``cron_expression``. It starts as ``new`` and is watched from its first ping."""
    created = await services().monitors.create(org_id(), await json_body())
    return jsonify(with_warnings({"data": _out(created.value)}, created.warnings)), 201


@bp.get("/monitors/<monitor_id>")
@document_response(Data[Monitor], 200)
async def get_monitor(monitor_id: str) -> Any:
    """Get a monitor."""
    row = await services().store.get_monitor(org_id(), parse_id(monitor_id, "monitor"))
    return jsonify({"data": _out(row)})


@bp.route("/monitors/<monitor_id>", methods=["PATCH", "PUT"])
@document_request(MonitorFields)
@document_response(DataWarnings[Monitor], 200)
@openapi.errors("url_not_allowed")
async def update_monitor(monitor_id: str) -> Any:
    """Change a monitor's fields (PUT is the same as PATCH: only the fields given change).
    ``status: paused`` pauses it until its next ping; ``status: new`` starts it afresh."""
    mid = parse_id(monitor_id, "monitor")
    updated = await services().monitors.update(org_id(), mid, await json_body())
    return jsonify(with_warnings({"data": _out(updated.value)}, updated.warnings))


@bp.delete("/monitors/<monitor_id>")
@openapi.no_content
async def delete_monitor(monitor_id: str) -> Any:
    """Delete a monitor and its pings; its ping URL answers 404 from now on."""
    await services().monitors.delete(org_id(), parse_id(monitor_id, "monitor"))
    return "", 204


@bp.get("/monitors/<monitor_id>/pings")
@document_response(Page[MonitorPing], 200)
async def list_pings(monitor_id: str) -> Any:
    """The pings a monitor received, newest first (kept as long as the plan's history)."""
    limit, offset = pagination()
    rows = await services().store.list_monitor_pings(
        org_id(), parse_id(monitor_id, "monitor"), limit=limit, offset=offset
    )
    return jsonify(page([serialize.monitor_ping(r) for r in rows], rows, limit, offset))
