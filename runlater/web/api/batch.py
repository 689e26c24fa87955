"""``POST /api/v1/tasks/batch``: up to 1,000 one-time tasks in one queue, one insert."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, current_app, jsonify
from quart_schema import document_request, document_response

from runlater.schemas.batch import BatchCreated, BatchRequest, parse_batch
from runlater.schemas.common import DataWarnings
from runlater.web import openapi, serialize
from runlater.web.api.common import check_urls, json_body, with_warnings
from runlater.web.auth import org_id

bp = Blueprint("batch", __name__)


@bp.post("/tasks/batch")
@document_request(BatchRequest)
@document_response(DataWarnings[BatchCreated], 201)
@openapi.errors("invalid_delay", "invalid_run_at", "url_not_allowed", "limit_exceeded")
async def create_batch() -> Any:
    """Create one one-time task per item, all in one queue."""
    draft = parse_batch(await json_body(), current_app.config["CLOCK"].now())
    warnings = await check_urls(draft.row)
    row = await current_app.config["STORE"].insert_batch(
        org_id(), draft.row, draft.delay_s, draft.bodies
    )
    data = {
        "queue": draft.row["queue"],
        "created": row["created"],
        "scheduled_for": serialize.ts(row["scheduled_for"]),
        "items": [
            {"task_id": str(task_id), "execution_id": str(execution_id)}
            for task_id, execution_id in zip(row["task_ids"], row["execution_ids"], strict=True)
        ],
    }
    return jsonify(with_warnings({"data": data}, warnings)), 201
