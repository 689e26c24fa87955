"""Writing one task's edit: shared by ``Store.update_task`` and the sync of ``BulkStore``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

import asyncpg

from runlater.store import bridge
from runlater.store.base import row
from runlater.store.queries import Q
from runlater.store.records import Row


async def update_task_row(
    conn: asyncpg.Connection,
    org_id: UUID,
    task_id: UUID,
    plan: Callable[[dict[str, Any]], dict[str, Any]],
) -> Row | None:
    """Lock the task, let ``plan(current_row) -> changes`` decide, write — one transaction."""
    async with bridge.transaction(conn):
        current = await conn.fetchrow(Q.get_task_for_update, org_id, task_id)
        if current is None:
            return None
        changes = plan(dict(current))
        await conn.fetchrow(Q.update_task, org_id, task_id, changes)
        if "url" in changes:
            await conn.execute(Q.refresh_pending_hosts, org_id, task_id)
        if "scheduled_at" in changes:
            await conn.fetch(
                Q.move_pending_once_execution, org_id, task_id, changes["scheduled_at"]
            )
            await conn.execute(Q.notify_executions, "")
        return row(await conn.fetchrow(Q.get_task, org_id, task_id))
