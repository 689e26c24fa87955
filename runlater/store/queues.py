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

    async def set_queue_paused(self, org_id: UUID, name: str, paused: bool) -> Row:
        """Pause or resume a queue (idempotent); NotFound when the organization has none of
        that name. Running executions finish; pending ones wait while it is paused."""
        return await self._one("queue not found", Q.set_queue_paused, org_id, name, paused)
