"""``/v2/queues``: Runlater's named queues (``/api/v1/queues``), which run one message at a
time, oldest first: ``parallelism`` is always 1, and an upsert asking for more is refused."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, jsonify

from runlater.domain import qstash
from runlater.errors import NotFound
from runlater.schemas.queues import check_queue_name
from runlater.web.auth import org_id
from runlater.web.qstash import responses
from runlater.web.qstash.common import json_of_body, store

bp = Blueprint("queues", __name__)

UPSERT_FIELDS = frozenset({"queueName", "parallelism", "paused"})


def _name(raw: Any, field: str = "queueName") -> str:
    if not isinstance(raw, str):
        raise qstash.refused(field, "is required (a string)")
    try:
        return check_queue_name(raw) or raw
    except ValueError as exc:
        raise qstash.refused(field, str(exc)) from None


@bp.post("/queues")
async def upsert_queue() -> Any:
    """Create or change a queue: ``{"queueName", "parallelism": 1, "paused"}``."""
    payload = await json_of_body()
    if not isinstance(payload, dict):
        raise qstash.refused("body", "must be a JSON object")
    unknown = sorted(set(payload) - UPSERT_FIELDS)
    if unknown:
        raise qstash.refused(unknown[0], "is not a known field")
    name = _name(payload.get("queueName"))
    parallelism = payload.get("parallelism", responses.PARALLELISM)
    if parallelism != responses.PARALLELISM or isinstance(parallelism, bool):
        raise qstash.refused(
            "parallelism", "must be 1: a Runlater queue delivers one message at a time"
        )
    paused = payload.get("paused", False)
    if not isinstance(paused, bool):
        raise qstash.refused("paused", "must be true or false")
    await store().set_queue_paused(org_id(), name, paused)
    return "", 200


@bp.get("/queues")
async def list_queues() -> Any:
    """The organization's queues, by name."""
    rows = await store().qstash_queues(org_id())
    return jsonify([responses.queue(r) for r in rows])


@bp.get("/queues/<name>")
async def get_queue(name: str) -> Any:
    """A queue, with how many messages wait in it (``lag``)."""
    rows = await store().qstash_queues(org_id(), name)
    if not rows:
        raise NotFound("queue not found")
    return jsonify(responses.queue(rows[0]))


@bp.delete("/queues/<name>")
async def delete_queue(name: str) -> Any:
    """Delete a queue no live task names (a task's next delivery needs its queue)."""
    row = await store().delete_qstash_queue(org_id(), name)
    if not row["existed"]:
        raise NotFound("queue not found")
    if not row["deleted"]:
        raise qstash.refused(
            "queue",
            f"{name!r} is still used by {row['tasks']} task(s); cancel or delete them first",
        )
    return "", 200


@bp.post("/queues/<name>/pause")
async def pause_queue(name: str) -> Any:
    """Pause: nothing new starts; a running delivery finishes."""
    await store().set_queue_paused(org_id(), _name(name, "queue"), True)
    return "", 200


@bp.post("/queues/<name>/resume")
async def resume_queue(name: str) -> Any:
    """Resume: the head of the queue runs as soon as it is due."""
    await store().set_queue_paused(org_id(), _name(name, "queue"), False)
    return "", 200
