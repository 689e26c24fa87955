"""Tasks as every front door changes them: validated, checked against the URL policy, written.

One ``TaskService`` per node, given the store, the URL policy and the clock. REST, batch and
sync call it today; the dashboard and the QStash API will too. It raises
``runlater.errors.InvalidInput`` (and passes the store's ``NotFound``/``LimitExceeded``); the
web layer turns those into HTTP answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from uuid import UUID

from runlater.clock import Clock
from runlater.domain import sync
from runlater.domain.batch import draft_batch
from runlater.domain.tasks import draft_edit, draft_task, plan_edit, stored_body
from runlater.domain.urls import FieldWarning, UrlPolicy
from runlater.schemas.sync import SyncDraft, parse_sync
from runlater.store.bulk import TaskSyncResult
from runlater.store.ports import TaskStore
from runlater.store.records import Row

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Accepted(Generic[T]):
    """What a change wrote, with what the caller should know about it."""

    value: T
    warnings: list[FieldWarning]


@dataclass(frozen=True, slots=True)
class TaskService:
    store: TaskStore
    urls: UrlPolicy
    clock: Clock

    async def create(
        self, org_id: UUID, payload: Any, *, origin: str = "api", body_bytes: bytes | None = None
    ) -> Accepted[Row]:
        """A new task (cron or one-time) from a ``POST /tasks`` body. Other front doors name
        themselves in ``origin`` and may give the body as raw bytes (sent byte-exact)."""
        draft = draft_task(payload, self.clock.now())
        draft.row["origin"] = origin
        if body_bytes is not None:
            draft.row.update(stored_body(body_bytes))
        warnings = await self.urls.check(draft.row)
        return Accepted(await self.store.insert_task(org_id, draft.row, draft.delay_s), warnings)

    async def update(self, org_id: UUID, task_id: UUID, payload: Any) -> Accepted[Row]:
        """Change the fields a ``PATCH /tasks/{id}`` body gives; the rest stay."""
        now = self.clock.now()
        edit = draft_edit(payload, now)
        warnings = await self.urls.check(edit.changes)
        row = await self.store.update_task(org_id, task_id, plan_edit(edit, now))
        return Accepted(row, warnings)

    async def delete(self, org_id: UUID, task_id: UUID) -> int:
        """Delete a task; its pending executions are cancelled (their count is returned)."""
        return await self.store.delete_task(org_id, task_id)

    async def trigger(self, org_id: UUID, task_id: UUID) -> Row:
        """Run a task now, as a new execution (also when it is disabled); the plan's monthly
        limit applies (the store raises LimitExceeded)."""
        return await self.store.trigger_task(org_id, task_id)

    async def retry(self, org_id: UUID, execution_id: UUID) -> Row:
        """One more attempt of a failed or timed-out execution, in its retry chain (Conflict
        for any other status or a chain at its last attempt)."""
        return await self.store.retry_execution(org_id, execution_id)

    async def create_batch(self, org_id: UUID, payload: dict[str, Any]) -> Accepted[Row]:
        """One-time tasks in one queue, one per item body, in one insert: ``queue``,
        ``created``, ``scheduled_for``, and the ``task_ids`` and ``execution_ids`` in item
        order."""
        draft = draft_batch(payload, self.clock.now())
        warnings = await self.urls.check(draft.row)
        row = await self.store.insert_batch(org_id, draft.row, draft.delay_s, draft.bodies)
        return Accepted({**row, "queue": draft.row["queue"]}, warnings)

    async def sync(
        self, org_id: UUID, payload: dict[str, Any], *, dry_run: bool
    ) -> Accepted[TaskSyncResult]:
        """Make the organization's tasks match a declared list, matched by name; one
        transaction, rolled back when ``dry_run``."""
        return await self.sync_declared(org_id, parse_sync(payload), dry_run=dry_run)

    async def sync_declared(
        self, org_id: UUID, draft: SyncDraft, *, dry_run: bool
    ) -> Accepted[TaskSyncResult]:
        """``sync`` of a request already parsed (``PUT /sync`` parses once for every kind)."""
        if draft.tasks is None:
            return Accepted(TaskSyncResult(created=[], updated=[], deleted=[], unchanged=[]), [])
        warnings = await self.urls.check_fields(
            (f"{item.path}.", item.fields.model_dump()) for item in draft.tasks
        )
        result = await self.store.sync_tasks(
            org_id,
            [item.name for item in draft.tasks],
            sync.decide(draft.tasks, self.clock.now()),
            delete_removed=draft.delete_removed,
            dry_run=dry_run,
        )
        return Accepted(result, warnings)
