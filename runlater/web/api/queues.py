"""``/api/v1/queues``: the organization's named queues, their counts, pause and resume.

A queue exists once a task names it (``queue`` on POST/PATCH /tasks). Another organization's
queue of the same name is a different queue, and unknown here (404).
"""

from __future__ import annotations

from typing import Any

from quart import Blueprint, current_app, jsonify
from quart_schema import document_response

from runlater.schemas.common import Data
from runlater.schemas.queues import Queue, QueueState
from runlater.web.auth import org_id

bp = Blueprint("queues", __name__)


def _store() -> Any:
    return current_app.config["STORE"]


def _state(row: dict[str, Any]) -> dict[str, Any]:
    return {"name": row["name"], "paused": row["paused"]}


@bp.get("/queues")
@document_response(Data[list[Queue]], 200)
async def list_queues() -> Any:
    """List the organization's queues with their pending and running counts."""
    rows = await _store().list_queues(org_id())
    return jsonify(
        {"data": [{**_state(r), "pending": r["pending"], "running": r["running"]} for r in rows]}
    )


@bp.post("/queues/<name>/pause")
@document_response(Data[QueueState], 200)
async def pause_queue(name: str) -> Any:
    """Pause a queue: nothing new starts; a running execution finishes; pending ones wait."""
    row = await _store().set_queue_paused(org_id(), name, True)
    return jsonify({"data": _state(row)})


@bp.post("/queues/<name>/resume")
@document_response(Data[QueueState], 200)
async def resume_queue(name: str) -> Any:
    """Resume a paused queue: its head runs as soon as it is due."""
    row = await _store().set_queue_paused(org_id(), name, False)
    return jsonify({"data": _state(row)})
