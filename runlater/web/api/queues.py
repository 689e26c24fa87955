"""``/api/v1/queues``: the organization's named queues, their counts, pause and resume.

A queue is a name: it exists once a task names it (``queue`` on POST/PATCH /tasks) or once it
is paused or resumed, which may come before its first item. Another organization's queue of the
same name is a different queue.
"""

from __future__ import annotations

from typing import Any

from quart import Blueprint, jsonify
from quart_schema import document_response

from runlater.schemas.common import Data
from runlater.schemas.queues import Queue, QueueState, check_queue_name
from runlater.web.auth import org_id
from runlater.web.context import services
from runlater.web.errors import validation_error

bp = Blueprint("queues", __name__)


def _store() -> Any:
    return services().store


def _name(raw: str) -> str:
    try:
        return check_queue_name(raw) or raw
    except ValueError as exc:
        raise validation_error({"name": [str(exc)]}) from None


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
    """Pause a queue: nothing new starts; a running execution finishes; pending ones wait.
    A queue no task has used yet is created paused: its first items wait."""
    row = await _store().set_queue_paused(org_id(), _name(name), True)
    return jsonify({"data": _state(row)})


@bp.post("/queues/<name>/resume")
@document_response(Data[QueueState], 200)
async def resume_queue(name: str) -> Any:
    """Resume a paused queue: its head runs as soon as it is due."""
    row = await _store().set_queue_paused(org_id(), _name(name), False)
    return jsonify({"data": _state(row)})
