"""``/v2/dlq``: Runlater's dead-letter queue (``runlater.domain.dlq``) in QStash's terms.

``dlqId`` is the dead letter's id; ``messageId`` (and ``scheduleId`` for a schedule's run) is
its task's id. Filters: ``messageId``/``scheduleId``, ``url`` (a piece of it), ``queueName``,
``responseStatus``, ``fromDate``/``toDate`` (unix ms); ``cursor`` and ``count`` (1-100) page.
URL groups, caller IPs and labels have no Runlater equivalent: those filters answer 400.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from quart import Blueprint, jsonify, request

from runlater.domain import qstash
from runlater.domain.dlq import DeadLetterService
from runlater.schemas.dlq import MAX_IDS, Selection
from runlater.store.dlq import DeadLetterFilter
from runlater.store.records import Row
from runlater.web.auth import org_id
from runlater.web.qstash import responses
from runlater.web.qstash.common import json_of_body, store, task_id

bp = Blueprint("dlq", __name__)

MAX_COUNT = 100
UNSUPPORTED_FILTERS = {
    "topicName": "URL groups (topics) are not supported",
    "callerIp": "caller IPs are not recorded",
    "label": "filtering by label is not supported",
    "api": "API destinations are not supported",
}
KNOWN = frozenset(
    {
        "cursor",
        "count",
        "messageId",
        "scheduleId",
        "url",
        "queueName",
        "responseStatus",
        "fromDate",
        "toDate",
        "order",
    }
)


def _service() -> DeadLetterService:
    return DeadLetterService(store())


def _int(name: str, low: int, high: int) -> int | None:
    raw = request.args.get(name)
    if raw is None:
        return None
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise qstash.refused(name, f"must be an integer between {low} and {high}")
    return int(raw)


def _uuid(name: str) -> UUID | None:
    raw = request.args.get(name)
    if raw is None:
        return None
    try:
        return UUID(raw)
    except ValueError:
        raise qstash.refused(name, "is not an id Runlater made") from None


def _time(name: str) -> datetime | None:
    ms = _int(name, 0, 253_402_300_799_000)
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC)


def _filter() -> DeadLetterFilter:
    for name in request.args:
        if name in UNSUPPORTED_FILTERS:
            raise qstash.refused(name, UNSUPPORTED_FILTERS[name])
        if name not in KNOWN:
            raise qstash.refused(name, "is not a known filter")
    if request.args.get("order", "latestFirst") != "latestFirst":
        raise qstash.refused("order", "only latestFirst is supported")
    message, schedule = _uuid("messageId"), _uuid("scheduleId")
    if message and schedule and message != schedule:
        raise qstash.refused("scheduleId", "give messageId or scheduleId, not two different ids")
    url = request.args.get("url")
    if url is not None and "\x00" in url:
        raise qstash.refused("url", "must not contain NUL characters")
    return DeadLetterFilter(
        task_id=message or schedule,
        queue=request.args.get("queueName"),
        url=url,
        status_code=_int("responseStatus", 100, 599),
        since=_time("fromDate"),
        until=_time("toDate"),
    )


def _message(letter: Row, task: Row | None) -> dict[str, Any]:
    """A dead letter as QStash's DLQ message: the task's request, the last response."""
    base: dict[str, Any] = {
        "messageId": str(letter["task_id"]),
        "url": letter["url"],
        "method": letter["method"],
        "maxRetries": 0,
        "notBefore": responses.ms(letter["failed_at"]),
        "createdAt": responses.ms(letter["inserted_at"]),
    }
    if task is not None:
        shown = responses.message(task) if task["schedule_type"] == "once" else {}
        base.update({k: v for k, v in shown.items() if k not in ("messageId", "url", "method")})
        base["maxRetries"] = task["retry_attempts"]
        base["createdAt"] = responses.ms(task["inserted_at"])
        base.setdefault("header", {n: [v] for n, v in (task.get("headers") or {}).items()})
        if task["schedule_type"] == "cron":
            base["scheduleId"] = str(task["id"])
            if task.get("body") is not None:
                base["body"] = task["body"]
    if letter.get("queue") is not None:
        base["queueName"] = letter["queue"]
    base.update(
        {
            "dlqId": str(letter["id"]),
            "responseStatus": letter["status_code"] or 0,
            "responseBody": letter.get("response_body") or "",
        }
    )
    return base


async def _messages(letters: list[Row]) -> list[dict[str, Any]]:
    found = await store().qstash_tasks(org_id(), [r["task_id"] for r in letters])
    return [_message(r, found.get(r["task_id"])) for r in letters]


@bp.get("/dlq")
async def list_dlq() -> Any:
    """Dead letters, newest first: ``{"messages": [...], "cursor"?}``."""
    where = _filter()
    count = _int("count", 1, MAX_COUNT) or MAX_COUNT
    before = _uuid("cursor")
    page = await _service().list(org_id(), where, limit=count, before=before)
    body: dict[str, Any] = {"messages": await _messages(page.rows)}
    if page.next_cursor is not None:
        body["cursor"] = str(page.next_cursor)
    return jsonify(body)


@bp.get("/dlq/<dlq_id>")
async def get_dlq(dlq_id: str) -> Any:
    """A dead letter: the request that failed for good and the last response."""
    letter = await _service().get(org_id(), task_id(dlq_id, "dead letter"))
    return jsonify((await _messages([letter]))[0])


@bp.delete("/dlq/<dlq_id>")
async def delete_dlq(dlq_id: str) -> Any:
    """Delete a dead letter (the task and its history stay)."""
    await _service().delete(org_id(), task_id(dlq_id, "dead letter"))
    return "", 200


@bp.delete("/dlq")
async def delete_dlq_many() -> Any:
    """Delete ``{"dlqIds": [...]}`` (at most 100); answers ``{"deleted": n}``."""
    payload = await json_of_body()
    if not isinstance(payload, dict) or set(payload) != {"dlqIds"}:
        raise qstash.refused("dlqIds", "is required, and the only field")
    ids = payload["dlqIds"]
    if not isinstance(ids, list) or not 1 <= len(ids) <= MAX_IDS:
        raise qstash.refused("dlqIds", f"must be a list of 1 to {MAX_IDS} ids")
    parsed = []
    for raw in ids:
        try:
            parsed.append(UUID(str(raw)))
        except ValueError:
            continue  # not an id Runlater made: nothing to delete
    if not parsed:
        return jsonify({"deleted": 0})
    outcome = await _service().delete_many(org_id(), Selection(parsed, DeadLetterFilter()))
    return jsonify({"deleted": len(outcome.rows)})
