"""``/api/v1/dlq``: the dead-letter queue — executions that failed for good — listed with
filters, retried (one, some, or all matching) and deleted."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from quart import Blueprint, jsonify, request
from quart_schema import document_querystring, document_request, document_response

from runlater.domain.dlq import BulkOutcome, DeadLetterService
from runlater.schemas.common import Data
from runlater.schemas.dlq import (
    DeadLetter,
    DeadLetterListQuery,
    DeadLetterPage,
    DeadLetterRetried,
    DeadLettersDeleted,
    DeadLetterSelection,
    DeadLettersRetried,
    parse_filter,
    parse_selection,
)
from runlater.web import openapi, serialize
from runlater.web.api.common import json_body, pagination, parse_id
from runlater.web.auth import org_id
from runlater.web.context import services
from runlater.web.errors import validation_error

bp = Blueprint("dlq", __name__)

PAGING = ("limit", "offset", "before")


def _service() -> DeadLetterService:
    return DeadLetterService(services().store)


def dead_letter(row: dict[str, Any]) -> dict[str, Any]:
    """The API's dead-letter object."""
    return {
        "id": str(row["id"]),
        "execution_id": str(row["execution_id"]),
        "task_id": str(row["task_id"]),
        "task_name": row["task_name"],
        "queue": row["queue"],
        "url": row["url"],
        "method": row["method"],
        "status": row["status"],
        "status_code": row["status_code"],
        "error_message": row["error_message"],
        "attempt": row["attempt"],
        "response_body": row["response_body"],
        "failed_at": serialize.ts(row["failed_at"]),
        "inserted_at": serialize.ts(row["inserted_at"]),
    }


def _retried(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "dead_letter_id": str(row["dead_letter_id"]),
        "execution_id": str(row["execution_id"]),
        "status": row["status"],
        "attempt": row["attempt"],
        "scheduled_for": serialize.ts(row["scheduled_for"]),
    }


def _cursor() -> UUID | None:
    """``?before=``: the ``next_cursor`` of the previous page."""
    raw = request.args.get("before")
    if raw is None:
        return None
    try:
        return UUID(raw)
    except ValueError:
        message = "must be a dead-letter id (the next_cursor of a page)"
        raise validation_error({"before": [message]}) from None


def _missing(outcome: BulkOutcome) -> list[str]:
    return [str(i) for i in outcome.not_found]


@bp.get("/dlq")
@document_querystring(DeadLetterListQuery)
@document_response(DeadLetterPage, 200)
async def list_dead_letters() -> Any:
    """List dead letters, newest first: filter by task, queue, a piece of the URL, status code
    and time of failure; page with ``offset`` or with the cursor ``before``."""
    limit, offset = pagination()
    args = {k: v for k, v in request.args.items() if k not in PAGING}
    where = parse_filter(args)
    found = await _service().list(org_id(), where, limit=limit, offset=offset, before=_cursor())
    body = {
        "data": [dead_letter(r) for r in found.rows],
        "has_more": found.has_more,
        "next_cursor": str(found.next_cursor) if found.next_cursor else None,
        "limit": limit,
        "offset": offset,
    }
    return jsonify(body)


@bp.get("/dlq/<dead_letter_id>")
@document_response(Data[DeadLetter], 200)
async def get_dead_letter(dead_letter_id: str) -> Any:
    """Get a dead letter, with the whole response body."""
    row = await _service().get(org_id(), parse_id(dead_letter_id, "dead letter"))
    return jsonify({"data": dead_letter(row)})


@bp.delete("/dlq/<dead_letter_id>")
@openapi.no_content
async def delete_dead_letter(dead_letter_id: str) -> Any:
    """Delete a dead letter (its execution stays in the task's history)."""
    await _service().delete(org_id(), parse_id(dead_letter_id, "dead letter"))
    return "", 204


@bp.post("/dlq/<dead_letter_id>/retry")
@document_response(Data[DeadLetterRetried], 202)
@openapi.errors("limit_exceeded")
async def retry_dead_letter(dead_letter_id: str) -> Any:
    """Retry a dead letter: a new attempt now, continuing the execution's retry chain; the
    letter leaves the queue (a new one arrives if this attempt fails for good too)."""
    row = await _service().retry(org_id(), parse_id(dead_letter_id, "dead letter"))
    return jsonify({"data": _retried(row)}), 202


@bp.post("/dlq/retry")
@document_request(DeadLetterSelection)
@document_response(Data[DeadLettersRetried], 202)
@openapi.errors("limit_exceeded")
async def retry_dead_letters() -> Any:
    """Retry dead letters by ``ids`` (1-100) or every letter a ``filter`` matches (oldest
    first, up to 1,000 a call: ``has_more`` says to call again), in one transaction."""
    outcome = await _service().retry_many(org_id(), parse_selection(await json_body()))
    data = {
        "retried": len(outcome.rows),
        "executions": [_retried(r) for r in outcome.rows],
        "not_found": _missing(outcome),
        "has_more": outcome.has_more,
    }
    return jsonify({"data": data}), 202


@bp.post("/dlq/delete")
@document_request(DeadLetterSelection)
@document_response(Data[DeadLettersDeleted], 200)
async def delete_dead_letters() -> Any:
    """Delete dead letters by ``ids`` (1-100) or every letter a ``filter`` matches (up to
    1,000 a call: ``has_more`` says to call again), in one transaction."""
    outcome = await _service().delete_many(org_id(), parse_selection(await json_body()))
    data = {
        "deleted": len(outcome.rows),
        "not_found": _missing(outcome),
        "has_more": outcome.has_more,
    }
    return jsonify({"data": data})
