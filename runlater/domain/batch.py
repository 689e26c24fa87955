"""``POST /tasks/batch``: many one-time tasks in one queue that share everything but their body.

The shared fields mean what they mean in ``POST /tasks`` for a one-time task (``draft_task``);
a batch has no cron and no shared body, and needs its queue (its tasks run in it, in order).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from runlater.domain.tasks import draft_task
from runlater.errors import InvalidInput, invalid
from runlater.schemas.batch import MAX_ITEMS, body_too_large, item_body

_NOT_IN_A_BATCH = {
    "cron": "a batch creates one-time tasks; create cron tasks with POST /tasks",
    "cron_expression": "a batch creates one-time tasks; create cron tasks with POST /tasks",
    "body": "each element of items is one task's body",
}


@dataclass(frozen=True, slots=True)
class BatchDraft:
    """A validated batch: the fields every task shares, their delay, and one body per task."""

    row: dict[str, Any]
    delay_s: float | None
    bodies: list[str | None]


def draft_batch(payload: dict[str, Any], now: datetime) -> BatchDraft:
    """The batch, or the error ``POST /tasks`` would give for its fields (422, or 400
    ``invalid_delay``/``invalid_run_at``); items are checked one by one: 413 for one over
    256 KiB, 422 for a NUL character, each keyed by its path (``items[3]``)."""
    items = payload.get("items")
    shared = {k: v for k, v in payload.items() if k != "items"}
    refused = {k: [m] for k, m in _NOT_IN_A_BATCH.items() if shared.get(k) is not None}
    if shared.get("queue") is None:
        refused["queue"] = ["is required: the tasks of a batch run in this queue, in order"]
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_ITEMS:
        refused["items"] = [f"must be a list of 1 to {MAX_ITEMS} task bodies"]
    if refused:
        raise invalid(refused)
    draft = draft_task(shared, now)
    too_large: dict[str, list[str]] = {}
    bad_items: dict[str, list[str]] = {}
    bodies: list[str | None] = []
    assert isinstance(items, list)  # checked above
    for index, item in enumerate(items):
        try:
            bodies.append(item_body(item, f"items[{index}]"))
        except InvalidInput as exc:
            (too_large if exc.code == "payload_too_large" else bad_items).update(exc.details or {})
    if too_large:
        raise body_too_large(too_large)
    if bad_items:
        raise invalid(bad_items)
    row = {k: v for k, v in draft.row.items() if k != "body"}
    return BatchDraft(row, draft.delay_s, bodies)
