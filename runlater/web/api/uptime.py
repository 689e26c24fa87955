"""``/api/v1/uptime-checks``: HTTP uptime checks, their results and uptime."""

from __future__ import annotations

import json
from typing import Any

from quart import Blueprint, jsonify
from quart_schema import document_request, document_response

from runlater.schemas.common import Data, DataWarnings, Page
from runlater.schemas.uptime import UptimeCheck, UptimeCheckFields, UptimeResultOut
from runlater.web import openapi, serialize
from runlater.web.api.common import json_body, page, pagination, parse_id, with_warnings
from runlater.web.auth import org_id
from runlater.web.context import services

bp = Blueprint("uptime", __name__)

FIELDS = (
    "id",
    "name",
    "url",
    "method",
    "interval_seconds",
    "timeout_ms",
    "expected_status_codes",
    "keyword",
    "failure_threshold",
    "status",
    "enabled",
    "badge_token",
    "last_checked_at",
    "last_response_ms",
    "last_status_code",
    "last_error",
    "next_check_at",
    "uptime",
    "notify_on_failure",
    "notify_on_recovery",
    "on_failure_url",
    "on_recovery_url",
    "alert_after",
    "inserted_at",
    "updated_at",
)
RESULT_FIELDS = ("checked_at", "ok", "status_code", "response_ms", "error")


def _out(row: dict[str, Any]) -> dict[str, Any]:
    uptime = row.get("uptime")
    if isinstance(uptime, str):
        uptime = json.loads(uptime)
    if uptime is None:
        uptime = {"24h": None, "7d": None, "30d": None, "90d": None}
    uptime = {k: (float(v) if v is not None else None) for k, v in uptime.items()}
    return serialize.pick({**row, "uptime": uptime}, FIELDS)


async def _fresh(check_id: Any) -> dict[str, Any]:
    svc = services()
    return _out(await svc.store.get_uptime_check(org_id(), check_id, svc.clock.now()))


@bp.get("/uptime-checks")
@document_response(Page[UptimeCheck], 200)
async def list_checks() -> Any:
    """List the organization's HTTP uptime checks by name, with their uptime."""
    limit, offset = pagination()
    svc = services()
    rows = await svc.store.list_uptime_checks(org_id(), svc.clock.now(), limit=limit, offset=offset)
    return jsonify(page([_out(r) for r in rows], rows, limit, offset))


@bp.post("/uptime-checks")
@document_request(UptimeCheckFields)
@document_response(DataWarnings[UptimeCheck], 201)
@openapi.errors("url_not_allowed")
async def create_check() -> Any:
    """Create an uptime check: ``name``, ``url``, ``interval_seconds``. Its first check runs
    within one interval, at its own phase (checks are spread over the interval)."""
    created = await services().uptime.create(org_id(), await json_body())
    body = {"data": await _fresh(created.value["id"])}
    return jsonify(with_warnings(body, created.warnings)), 201


@bp.get("/uptime-checks/<check_id>")
@document_response(Data[UptimeCheck], 200)
async def get_check(check_id: str) -> Any:
    """Get an uptime check with its uptime over 24 hours, 7, 30 and 90 days."""
    return jsonify({"data": await _fresh(parse_id(check_id, "uptime check"))})


@bp.route("/uptime-checks/<check_id>", methods=["PATCH", "PUT"])
@document_request(UptimeCheckFields)
@document_response(DataWarnings[UptimeCheck], 200)
@openapi.errors("url_not_allowed")
async def update_check(check_id: str) -> Any:
    """Change a check's fields (PUT is the same as PATCH: only the fields given change)."""
    cid = parse_id(check_id, "uptime check")
    updated = await services().uptime.update(org_id(), cid, await json_body())
    return jsonify(with_warnings({"data": await _fresh(cid)}, updated.warnings))


@bp.delete("/uptime-checks/<check_id>")
@openapi.no_content
async def delete_check(check_id: str) -> Any:
    """Delete an uptime check with its results."""
    await services().uptime.delete(org_id(), parse_id(check_id, "uptime check"))
    return "", 204


@bp.get("/uptime-checks/<check_id>/results")
@document_response(Page[UptimeResultOut], 200)
async def list_results(check_id: str) -> Any:
    """The check's results, newest first (kept as long as the plan keeps history; daily
    uptime and response time are kept 90 days)."""
    limit, offset = pagination()
    rows = await services().store.list_uptime_results(
        org_id(), parse_id(check_id, "uptime check"), limit=limit, offset=offset
    )
    return jsonify(page([serialize.pick(r, RESULT_FIELDS) for r in rows], rows, limit, offset))
