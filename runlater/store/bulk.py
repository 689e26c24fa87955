"""Store methods for batch creation (``POST /tasks/batch``) and declarative sync (``PUT /sync``).

A batch is one statement. A sync is one transaction in one crossing: lock the organization's
sync, lock the tasks it names, let the caller's ``decide`` turn them into a plan (it may raise to
refuse the whole request), write the plan, and commit — or roll back for a dry run.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import asyncpg

from runlater.errors import NotFound
from runlater.store import bridge
from runlater.store.base import StoreBase, fetchrow
from runlater.store.queries import Q
from runlater.store.records import Row
from runlater.store.task_writes import update_task_row


@dataclass(frozen=True, slots=True)
class NewTask:
    """A task to create, as ``insert_task`` takes it."""

    name: str
    row: dict[str, Any]
    delay_s: float | None


@dataclass(frozen=True, slots=True)
class TaskEdit:
    """The columns to write to an existing task (as ``update_task``'s plan returns them)."""

    name: str
    task_id: UUID
    changes: dict[str, Any]


@dataclass(frozen=True, slots=True)
class TaskSyncPlan:
    create: list[NewTask] = field(default_factory=list)
    update: list[TaskEdit] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class TaskSyncResult:
    """Task names by what the sync did to them (or, for a dry run, would do)."""

    created: list[str]
    updated: list[str]
    deleted: list[str]
    unchanged: list[str]


Decide = Callable[[list[Row]], TaskSyncPlan]


class DryRun(Exception):
    """Carries a dry run's result out of its transaction, rolling the transaction back."""

    def __init__(self, result: TaskSyncResult) -> None:
        super().__init__("dry run")
        self.result = result


def _same(changes: dict[str, Any]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A plan that writes ``changes`` whatever the current row holds."""
    return lambda _current: changes


async def _apply_task_sync(
    conn: asyncpg.Connection,
    org_id: UUID,
    names: list[str],
    decide: Decide,
    delete_removed: bool,
) -> TaskSyncResult:
    await conn.execute(Q.lock_org_sync, org_id)
    existing = [dict(r) for r in await conn.fetch(Q.lock_named_tasks, org_id, names)]
    plan = decide(existing)
    # Every task lock before any execution insert (whose trigger locks the organization's
    # usage counter), the order the scheduler takes them in too: no deadlock between the two.
    deleted: list[str] = []
    if delete_removed:
        unlisted = [r["id"] for r in await conn.fetch(Q.unlisted_synced_task_ids, org_id, names)]
        if unlisted:
            deleted = list((await conn.fetchrow(Q.delete_tasks, org_id, unlisted))["names"])
    for new in plan.create:
        await conn.fetchrow(Q.insert_task, org_id, new.row, new.delay_s)
    for edit in plan.update:
        # The row is already locked above; the plan was decided from it.
        await update_task_row(conn, org_id, edit.task_id, _same(edit.changes))
    await conn.execute(Q.mark_synced_tasks, org_id, names)
    return TaskSyncResult(
        created=[n.name for n in plan.create],
        updated=[e.name for e in plan.update],
        deleted=deleted,
        unchanged=list(plan.unchanged),
    )


async def run_sync(
    conn: asyncpg.Connection, apply: Callable[[], Awaitable[TaskSyncResult]], dry_run: bool
) -> TaskSyncResult:
    """``apply()`` in one transaction (a savepoint inside a request's), committed — or, for a
    dry run, rolled back with its result kept. Shared by the syncs of every kind."""
    try:
        async with bridge.transaction(conn):
            result = await apply()
            if dry_run:
                raise DryRun(result)
            return result
    except DryRun as done:
        return done.result


async def _sync_tasks(
    conn: asyncpg.Connection,
    org_id: UUID,
    names: list[str],
    decide: Decide,
    delete_removed: bool,
    dry_run: bool,
) -> TaskSyncResult:
    return await run_sync(
        conn, lambda: _apply_task_sync(conn, org_id, names, decide, delete_removed), dry_run
    )


class BulkStore(StoreBase):
    async def insert_batch(
        self, org_id: UUID, task: dict[str, Any], delay_s: float | None, bodies: Sequence[Any]
    ) -> Row:
        """One one-time task per body, all sharing ``task``'s fields, and their first
        executions — one statement. Returns ``created``, ``scheduled_for``, and ``task_ids`` and
        ``execution_ids`` in the order of ``bodies``."""
        row = await self._run(fetchrow, Q.insert_batch_tasks, org_id, task, delay_s, list(bodies))
        if not row["created"]:
            raise NotFound("organization not found")
        return row

    async def sync_tasks(
        self,
        org_id: UUID,
        names: Sequence[str],
        decide: Decide,
        *,
        delete_removed: bool,
        dry_run: bool,
    ) -> TaskSyncResult:
        """Make the organization's tasks named ``names`` match the request, in one transaction.

        ``decide(rows)`` gets the live tasks with those names (locked) and returns the plan; an
        exception from it rolls everything back. With ``delete_removed`` every other live task
        that sync manages (created or once named by a sync) is deleted. ``dry_run`` does all
        of it and rolls back.
        """
        return await self._run(_sync_tasks, org_id, list(names), decide, delete_removed, dry_run)
