"""``PUT /api/v1/sync``: declarative tasks, matched by name, applied in one transaction.

An item whose name is new is created as ``POST /tasks`` creates it; one whose name exists is
edited as ``PATCH /tasks/{id}`` edits it — and not written at all when nothing differs. Which of
the two applies is decided from the rows locked inside the sync's transaction, so every check
(also the database's own) runs before anything commits, and ``?dry_run=true`` runs the same
transaction and rolls it back.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from quart import Blueprint, current_app, jsonify, request
from quart_schema import document_querystring, document_request, document_response

from runlater.schemas.common import DataWarnings
from runlater.schemas.sync import (
    INVALID,
    SyncItem,
    SyncQuery,
    SyncRequest,
    SyncResult,
    parse_dry_run,
    parse_sync,
    under,
)
from runlater.schemas.tasks import parse_create, parse_run_at, parse_update
from runlater.store.bulk import Decide, NewTask, TaskEdit, TaskSyncPlan, TaskSyncResult
from runlater.store.records import Row
from runlater.web import openapi
from runlater.web.api.common import (
    UrlWarning,
    check_urls,
    json_body,
    task_update_plan,
    with_warnings,
)
from runlater.web.auth import org_id
from runlater.web.errors import ApiError, validation_error

bp = Blueprint("sync", __name__)

# Columns an edit recomputes from others; they alone never make a task "updated".
DERIVED = frozenset({"next_run_at", "interval_minutes"})
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _same_instant(value: Any, current: datetime | None) -> bool:
    try:
        return current is not None and parse_run_at(value, _EPOCH) == current
    except ApiError:
        return False  # not a valid time: parse_update reports it


def _differs(column: str, current: Any, new: Any) -> bool:
    if column == "scheduled_at" and isinstance(new, str):
        new = datetime.fromisoformat(new)
    return current != new


def _edit(item: SyncItem, current: Row, now: datetime) -> dict[str, Any] | None:
    """The columns ``PATCH /tasks/{id}`` would write for this item, or None when every
    declared field already has the declared value."""
    data = dict(item.data)
    if current["schedule_type"] == "cron":
        for key, shown in (("delay", "delay"), ("scheduled_at", "run_at")):
            if data.pop(key, None) is not None:
                raise validation_error(
                    {shown: [f"{item.name!r} is a cron task; delete it to make it one-time"]}
                )
    else:
        data.pop("delay", None)  # a delay places a new one-time task; it never moves one
        if "scheduled_at" in data and _same_instant(data["scheduled_at"], current["scheduled_at"]):
            del data["scheduled_at"]  # as declared: even a past run_at is no change
    changes, expression = parse_update(data, now)
    columns = task_update_plan(changes, expression, now)(current)
    if any(_differs(c, current[c], v) for c, v in columns.items() if c not in DERIVED):
        return columns
    return None


def _decide(items: list[SyncItem], now: datetime) -> Decide:
    def decide(existing: list[Row]) -> TaskSyncPlan:
        by_name: dict[str, list[Row]] = {}
        for row in existing:
            by_name.setdefault(row["name"], []).append(row)
        plan = TaskSyncPlan()
        errors: dict[str, list[str]] = {}
        for item in items:
            rows = by_name.get(item.name, [])
            try:
                if len(rows) > 1:
                    raise validation_error(
                        {"name": [f"{len(rows)} tasks are named {item.name!r}; keep one"]}
                    )
                if not rows:
                    draft = parse_create(item.data, now)
                    plan.create.append(NewTask(item.name, draft.row, draft.delay_s))
                elif (columns := _edit(item, rows[0], now)) is None:
                    plan.unchanged.append(item.name)
                else:
                    plan.update.append(TaskEdit(item.name, rows[0]["id"], columns))
            except ApiError as exc:
                errors.update(under(item.path, exc))
        if errors:
            raise validation_error(errors, INVALID)
        return plan

    return decide


async def _check_item_urls(items: list[SyncItem]) -> list[UrlWarning]:
    details: dict[str, list[str]] = {}
    warnings: list[UrlWarning] = []
    for item in items:
        try:
            warnings += await check_urls(item.fields.model_dump(), prefix=f"{item.path}.")
        except ApiError as exc:
            details.update(exc.details or {})
    if details:
        raise ApiError(422, "url_not_allowed", "a URL points where Runlater may not call", details)
    return warnings


@bp.put("/sync")
@document_querystring(SyncQuery)
@document_request(SyncRequest)
@document_response(DataWarnings[SyncResult], 200)
@openapi.errors("url_not_allowed", "limit_exceeded")
async def sync() -> Any:
    """Make the organization's tasks match a declared list, matched by name."""
    dry_run = parse_dry_run(request.args.get("dry_run"))
    draft = parse_sync(await json_body())
    result = TaskSyncResult(created=[], updated=[], deleted=[], unchanged=[])
    warnings: list[UrlWarning] = []
    if draft.tasks is not None:
        warnings = await _check_item_urls(draft.tasks)
        result = await current_app.config["STORE"].sync_tasks(
            org_id(),
            [item.name for item in draft.tasks],
            _decide(draft.tasks, current_app.config["CLOCK"].now()),
            delete_removed=draft.delete_removed,
            dry_run=dry_run,
        )
    changes = {
        "created": result.created,
        "updated": result.updated,
        "deleted": result.deleted,
        "unchanged": result.unchanged,
    }
    return jsonify(with_warnings({"data": {"dry_run": dry_run, "tasks": changes}}, warnings))
