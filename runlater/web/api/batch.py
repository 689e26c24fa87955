"""``POST /api/v1/tasks/batch``: up to 1,000 one-time tasks in one queue, one insert."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, jsonify
from quart_schema import document_request, document_response

from runlater.schemas.batch import BatchCreated, BatchRequest
from runlater.schemas.common import DataWarnings
from runlater.web import openapi, serialize
from runlater.web.api.common import json_body, with_warnings
from runlater.web.auth import org_id
from runlater.web.context import services

bp = Blueprint("batch", __name__)


@bp.post("/tasks/batch")
@document_request(BatchRequest)
@document_response(DataWarnings[BatchCreated], 201)
@openapi.errors("invalid_delay", "invalid_run_at", "url_not_allowed", "limit_exceeded")
async def create_batch() -> Any:
    """Create one one-time task per item, all in one queue."""
    created = await services().tasks.create_batch(org_id(), await json_body())
    row = created.value
    data = {
        "queue": row["queue"],
        "created": row["created"],
        "scheduled_for": serialize.ts(row["scheduled_for"]),
        "items": [
            {"task_id": str(task_id), "execution_id": str(execution_id)}
            for task_id, execution_id in zip(row["task_ids"], row["execution_ids"], strict=True)
        ],
    }
    return jsonify(with_warnings({"data": data}, created.warnings)), 201
