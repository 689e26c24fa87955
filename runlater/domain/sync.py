"""``PUT /sync``: what a declared list of tasks means against the organization's tasks.

An item whose name is new is created as ``POST /tasks`` creates it; one whose name exists is
edited as ``PATCH /tasks/{id}`` edits it, and not written at all when nothing differs. Which of
the two applies is decided from the rows the store locked inside the sync's transaction
(``decide``), so every check runs before anything commits.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from runlater.domain.tasks import draft_edit, draft_task, plan_edit
from runlater.errors import InvalidInput, invalid
from runlater.schemas.sync import INVALID, SyncItem, under
from runlater.schemas.tasks import parse_run_at
from runlater.store.bulk import Decide, NewTask, TaskEdit, TaskSyncPlan
from runlater.store.records import Row

# Columns an edit recomputes from others; they alone never make a task "updated".
DERIVED = frozenset({"next_run_at", "interval_minutes"})
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _same_instant(value: Any, current: datetime | None) -> bool:
    try:
        return current is not None and parse_run_at(value, _EPOCH) == current
    except InvalidInput:
        return False  # not a valid time: draft_edit reports it


def _differs(column: str, current: Any, new: Any) -> bool:
    if column == "scheduled_at" and isinstance(new, str):
        new = datetime.fromisoformat(new)
    return current != new


def edit_columns(item: SyncItem, current: Row, now: datetime) -> dict[str, Any] | None:
    """The columns ``PATCH /tasks/{id}`` would write for this item, or None when every
    declared field already has the declared value."""
    data = dict(item.data)
    if current["schedule_type"] == "cron":
        for key, shown in (("delay", "delay"), ("scheduled_at", "run_at")):
            if data.pop(key, None) is not None:
                raise invalid(
                    {shown: [f"{item.name!r} is a cron task; delete it to make it one-time"]}
                )
    else:
        data.pop("delay", None)  # a delay places a new one-time task; it never moves one
        if "scheduled_at" in data and _same_instant(data["scheduled_at"], current["scheduled_at"]):
            del data["scheduled_at"]  # as declared: even a past run_at is no change
    columns = plan_edit(draft_edit(data, now), now)(current)
    if any(_differs(c, current[c], v) for c, v in columns.items() if c not in DERIVED):
        return columns
    return None


def decide(items: list[SyncItem], now: datetime) -> Decide:
    """The store's callback: from the locked rows with the declared names, what to write."""

    def plan_for(existing: list[Row]) -> TaskSyncPlan:
        by_name: dict[str, list[Row]] = {}
        for row in existing:
            by_name.setdefault(row["name"], []).append(row)
        plan = TaskSyncPlan()
        errors: dict[str, list[str]] = {}
        for item in items:
            rows = by_name.get(item.name, [])
            try:
                if len(rows) > 1:
                    raise invalid(
                        {"name": [f"{len(rows)} tasks are named {item.name!r}; keep one"]}
                    )
                if not rows:
                    draft = draft_task(item.data, now)
                    plan.create.append(NewTask(item.name, draft.row, draft.delay_s))
                elif (columns := edit_columns(item, rows[0], now)) is None:
                    plan.unchanged.append(item.name)
                else:
                    plan.update.append(TaskEdit(item.name, rows[0]["id"], columns))
            except InvalidInput as exc:
                errors.update(under(item.path, exc))
        if errors:
            raise invalid(errors, INVALID)
        return plan

    return plan_for
