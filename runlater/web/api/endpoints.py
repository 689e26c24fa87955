"""``/api/v1/endpoints``: inbound endpoints, the events they received, and replays.

``endpoint_json`` and ``event_json`` are the API's objects; the dashboard's pages show the same.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from quart import Blueprint, jsonify, request
from quart_schema import document_querystring, document_request, document_response

from runlater.schemas.common import Data, DataWarnings, Page
from runlater.schemas.inbound import (
    Endpoint,
    EndpointFields,
    EventQuery,
    InboundEvent,
    InboundEventDetail,
    ReplayRequest,
    ReplayResult,
    parse_replay,
)
from runlater.store.inbound import EventFilter
from runlater.web import openapi, serialize
from runlater.web.api.common import json_body, page, pagination, parse_id, with_warnings
from runlater.web.auth import org_id
from runlater.web.context import services
from runlater.web.errors import validation_error

bp = Blueprint("endpoints", __name__)

ENDPOINT_FIELDS = (
    "id",
    "name",
    "slug",
    "inbound_url",
    "forward_urls",
    "enabled",
    "retry_attempts",
    "use_queue",
    "forward_headers",
    "forward_body",
    "forward_method",
    "forward_authorization",
    "verify",
    "notify_on_failure",
    "notify_on_recovery",
    "on_failure_url",
    "on_recovery_url",
    "alert_after",
    "inserted_at",
    "updated_at",
)
EVENT_FIELDS = (
    "id",
    "endpoint_id",
    "status",
    "reason",
    "method",
    "path",
    "query",
    "headers",
    "size",
    "source_ip",
    "received_at",
)
FORWARD_FIELDS = (
    "task_id",
    "url",
    "method",
    "execution_id",
    "status",
    "attempt",
    "status_code",
    "error_message",
    "scheduled_for",
    "finished_at",
)


def inbound_url(base_url: str, slug: str) -> str:
    return f"{base_url}/in/{slug}"


def endpoint_json(row: dict[str, Any], base_url: str) -> dict[str, Any]:
    """An endpoint row as the API shows it (``verify`` null when no signature is checked)."""
    shown = dict(row)
    shown["inbound_url"] = inbound_url(base_url, row["slug"])
    shown["verify"] = (
        {
            "scheme": row["verify_scheme"],
            "secret": row["verify_secret"],
            "header": row["verify_header"],
            "encoding": row["verify_encoding"],
            "tolerance_s": row["verify_tolerance_s"],
        }
        if row["verify_scheme"]
        else None
    )
    return serialize.pick(shown, ENDPOINT_FIELDS)


def body_json(body: bytes, is_text: bool) -> dict[str, Any]:
    """The body shown safely: text (``encoding`` utf-8) or base64 (anything else)."""
    if is_text:
        return {"encoding": "utf-8", "body": body.decode("utf-8"), "body_base64": None}
    return {
        "encoding": "base64",
        "body": None,
        "body_base64": base64.b64encode(body).decode("ascii"),
    }


def event_json(row: dict[str, Any]) -> dict[str, Any]:
    """An event row as the API shows it; with ``forwards`` when the row has them."""
    shown = serialize.pick(row, EVENT_FIELDS)
    shown.update(body_json(bytes(row["body"]), row["body_is_text"]))
    if "forwards" in row:
        shown["forwards"] = [serialize.pick(f, FORWARD_FIELDS) for f in row["forwards"]]
    return shown


def _out(row: dict[str, Any]) -> dict[str, Any]:
    return endpoint_json(row, services().settings.public_base_url)


def _instant(name: str) -> datetime | None:
    raw = request.args.get(name)
    if raw is None:
        return None
    try:
        when = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    except ValueError:
        when = None
    if when is None or when.utcoffset() is None:
        raise validation_error(
            {name: ["must be an ISO-8601 timestamp with an offset, e.g. 2026-01-01T09:00:00Z"]}
        )
    return when


def event_filter() -> EventFilter:
    """The events list's query: ``status``, ``since``, ``until`` (422 naming a bad one)."""
    status = request.args.get("status")
    if status is not None and status not in ("received", "rejected"):
        raise validation_error({"status": ["must be received or rejected"]})
    return EventFilter(status=status, since=_instant("since"), until=_instant("until"))


@bp.get("/endpoints")
@document_response(Page[Endpoint], 200)
async def list_endpoints() -> Any:
    """List the organization's inbound endpoints by name."""
    limit, offset = pagination()
    rows = await services().store.list_endpoints(org_id(), limit=limit, offset=offset)
    return jsonify(page([_out(r) for r in rows], rows, limit, offset))


@bp.post("/endpoints")
@document_request(EndpointFields)
@document_response(DataWarnings[Endpoint], 201)
@openapi.errors("url_not_allowed")
async def create_endpoint() -> Any:
    """Create an inbound endpoint: ``name`` (unique) and up to 10 ``forward_urls``. Requests
    to its ``inbound_url`` are recorded and forwarded."""
    created = await services().inbound.create(org_id(), await json_body())
    return jsonify(with_warnings({"data": _out(created.value)}, created.warnings)), 201


@bp.get("/endpoints/<endpoint_id>")
@document_response(Data[Endpoint], 200)
async def get_endpoint(endpoint_id: str) -> Any:
    """Get an endpoint."""
    row = await services().store.get_endpoint(org_id(), parse_id(endpoint_id, "endpoint"))
    return jsonify({"data": _out(row)})


@bp.route("/endpoints/<endpoint_id>", methods=["PATCH", "PUT"])
@document_request(EndpointFields)
@document_response(DataWarnings[Endpoint], 200)
@openapi.errors("url_not_allowed")
async def update_endpoint(endpoint_id: str) -> Any:
    """Change an endpoint's fields (PUT is the same as PATCH: only the fields given change;
    ``verify`` is replaced as a whole, null removes the check)."""
    eid = parse_id(endpoint_id, "endpoint")
    updated = await services().inbound.update(org_id(), eid, await json_body())
    return jsonify(with_warnings({"data": _out(updated.value)}, updated.warnings))


@bp.delete("/endpoints/<endpoint_id>")
@openapi.no_content
async def delete_endpoint(endpoint_id: str) -> Any:
    """Delete an endpoint, its events and their forwards (forwards not sent yet never are);
    its inbound URL answers 404 from now on."""
    await services().inbound.delete(org_id(), parse_id(endpoint_id, "endpoint"))
    return "", 204


@bp.get("/endpoints/<endpoint_id>/events")
@document_querystring(EventQuery)
@document_response(Page[InboundEvent], 200)
async def list_events(endpoint_id: str) -> Any:
    """The requests an endpoint received, newest first (kept as long as the plan's history),
    with headers and body; ``status``, ``since`` and ``until`` filter."""
    limit, offset = pagination()
    where = event_filter()
    rows = await services().inbound.list_events(
        org_id(), parse_id(endpoint_id, "endpoint"), where, limit=limit, offset=offset
    )
    return jsonify(page([event_json(r) for r in rows], rows, limit, offset))


@bp.get("/endpoints/<endpoint_id>/events/<event_id>")
@document_response(Data[InboundEventDetail], 200)
async def get_event(endpoint_id: str, event_id: str) -> Any:
    """One event with its headers, raw body and forwards (each forward's latest execution)."""
    row = await services().inbound.get_event(
        org_id(), parse_id(endpoint_id, "endpoint"), parse_id(event_id, "event")
    )
    return jsonify({"data": event_json(row)})


@bp.post("/endpoints/<endpoint_id>/events/<event_id>/replay")
@document_response(Data[ReplayResult], 202)
@openapi.errors("limit_exceeded")
async def replay_event(endpoint_id: str, event_id: str) -> Any:
    """Forward one event again (also a rejected one) to the endpoint's forward URLs now: one
    new one-time task per URL."""
    done = await services().inbound.replay_event(
        org_id(), parse_id(endpoint_id, "endpoint"), parse_id(event_id, "event")
    )
    return jsonify({"data": {"events": done["events"], "forwards": done["forwards"]}}), 202


@bp.post("/endpoints/<endpoint_id>/replay")
@document_request(ReplayRequest)
@document_response(Data[ReplayResult], 202)
@openapi.errors("limit_exceeded")
async def replay_events(endpoint_id: str) -> Any:
    """Forward the events the filters choose again (oldest first, at most 1,000): by
    ``event_ids``, ``status`` (default ``received``), ``since``/``until``."""
    eid = parse_id(endpoint_id, "endpoint")
    chosen = parse_replay(await json_body())
    done = await services().inbound.replay(org_id(), eid, chosen)
    return jsonify({"data": {"events": done["events"], "forwards": done["forwards"]}}), 202
