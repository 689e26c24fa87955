"""Store methods for named queues: pause state, counts.

Queue rows and each execution's place in its queue are kept by triggers (migration 005), and
the claim (``claim_executions``) runs at most one execution per queue, head first.
"""

from __future__ import annotations

from uuid import UUID

from runlater.store.base import StoreBase, fetch
from runlater.store.queries import Q
from runlater.store.records import Row


class QueueStore(StoreBase):
    async def list_queues(self, org_id: UUID) -> list[Row]:
        """Every queue of the organization by name: ``name``, ``paused``, ``pending``,
        ``running``."""
        return await self._run(fetch, Q.list_queues, org_id)

    async def execution_counts(self) -> dict[str, int]:
        """How many executions are pending and running in the whole cluster: an operator's
        figure for ``/metrics``, never shown to an organization."""
        rows = await self._run(fetch, Q.count_executions_by_status)
        return {row["status"]: row["n"] for row in rows}

    async def set_queue_paused(self, org_id: UUID, name: str, paused: bool) -> Row:
        """Pause or resume a queue (idempotent), creating it when no task has named it yet.
        Running executions finish; pending ones wait while it is paused."""
        return await self._one("queue not found", Q.set_queue_paused, org_id, name, paused)
