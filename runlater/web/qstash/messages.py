"""Publishing: ``POST /v2/publish/{destination}``, ``/v2/enqueue/{queue}/{destination}``,
``/v2/batch``; and ``GET``/``DELETE /v2/messages/{messageId}``.

A message is a one-time task of origin 'qstash' (visible in ``/api/v1/tasks`` and on the
dashboard); its ``messageId`` is the task's id. Cancelling deletes the task: its pending
execution is cancelled, its history stays.
"""

from __future__ import annotations

from typing import Any

from quart import Blueprint, jsonify, request

from runlater.domain import qstash
from runlater.errors import InvalidInput, NotFound
from runlater.schemas.queues import check_queue_name
from runlater.web.auth import org_id
from runlater.web.context import services
from runlater.web.qstash import responses
from runlater.web.qstash.common import (
    destination,
    header_pairs,
    json_of_body,
    qstash_task,
    raw_body,
    store,
    tasks,
)

bp = Blueprint("messages", __name__)

MAX_BATCH = 100
MAX_CANCEL = 100


def _queue(name: str) -> str:
    try:
        return check_queue_name(name) or name
    except ValueError as exc:
        raise qstash.refused("queue", str(exc)) from None


async def _publish(draft: qstash.MessageDraft) -> qstash.Published:
    return await qstash.publish(tasks(), store(), org_id(), draft, request.path)


@bp.post("/publish/<path:target>")
async def publish(target: str) -> Any:
    """Publish a message to a URL (the rest of the path, as sent)."""
    body = await raw_body()
    now = services().clock.now()
    draft = qstash.parse_message(destination(2), header_pairs(), body, now)
    return jsonify((await _publish(draft)).as_json()), 201


@bp.post("/enqueue/<string:queue>/<path:target>")
async def enqueue(queue: str, target: str) -> Any:
    """Enqueue a message on a named queue (made when first used)."""
    body = await raw_body()
    now = services().clock.now()
    draft = qstash.parse_message(destination(3), header_pairs(), body, now, queue=_queue(queue))
    return jsonify((await _publish(draft)).as_json()), 201


@bp.post("/batch")
async def batch() -> Any:
    """Publish or enqueue up to 100 messages at once, all or none; answers one
    ``{"messageId"}`` per item, in order."""
    items = await json_of_body()
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_BATCH:
        raise qstash.refused("body", f"must be a JSON array of 1 to {MAX_BATCH} messages")
    now = services().clock.now()
    drafts = []
    for index, item in enumerate(items):
        try:
            target, headers, body, queue = qstash.batch_item(item, index)
            drafts.append(
                qstash.parse_message(
                    target, headers, body, now, queue=None if queue is None else _queue(queue)
                )
            )
        except InvalidInput as exc:
            if exc.message.startswith("batch["):
                raise
            raise qstash.refused(f"batch[{index}]", exc.message) from None
    answers = [(await _publish(draft)).as_json() for draft in drafts]
    return jsonify(answers), 201


@bp.get("/messages/<message_id>")
async def get_message(message_id: str) -> Any:
    """A message published through /v2."""
    return jsonify(responses.message(await qstash_task(org_id(), message_id, "once")))


@bp.delete("/messages/<message_id>")
async def cancel_message(message_id: str) -> Any:
    """Cancel a message: its pending delivery is cancelled (one in flight finishes)."""
    row = await qstash_task(org_id(), message_id, "once")
    await tasks().delete(org_id(), row["id"])
    return "", 200


@bp.delete("/messages")
async def cancel_messages() -> Any:
    """Cancel the messages ``{"messageIds": [...]}`` (at most 100); answers how many were."""
    raw = await request.get_data(as_text=False)
    payload = await json_of_body() if raw.strip() else None
    ids = payload.get("messageIds") if isinstance(payload, dict) else None
    if payload is not None and isinstance(payload, dict) and set(payload) - {"messageIds"}:
        raise qstash.refused(sorted(set(payload) - {"messageIds"})[0], "is not a known field")
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise qstash.refused(
            "messageIds", "is required (cancelling every message at once is not supported)"
        )
    if len(ids) > MAX_CANCEL:
        raise qstash.refused("messageIds", f"at most {MAX_CANCEL} ids")
    cancelled = 0
    for raw_id in dict.fromkeys(ids):
        try:
            row = await qstash_task(org_id(), raw_id, "once")
        except NotFound:
            continue
        await tasks().delete(org_id(), row["id"])
        cancelled += 1
    return jsonify({"cancelled": cancelled})
