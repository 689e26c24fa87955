"""Store methods for plan limits, usage counters and retention.

The limits themselves are enforced by the database (migration 006): these methods keep its
``plans`` table equal to ``runlater.plans``, read an organization's usage, and delete history
past its plan's retention.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from runlater.plans import PLANS
from runlater.store.base import StoreBase, fetchval
from runlater.store.queries import Q
from runlater.store.records import Row


class UsageStore(StoreBase):
    async def sync_plans(self) -> None:
        """Write the limits of ``runlater.plans`` into the ``plans`` table the triggers read."""
        plans = list(PLANS.values())
        await self._run(
            fetchval,
            Q.upsert_plans,
            [p.tier for p in plans],
            [p.min_cron_interval_minutes for p in plans],
            [p.monthly_executions for p in plans],
            [p.hard_stop for p in plans],
            [p.retention_days for p in plans],
            [p.max_members for p in plans],
        )

    async def get_organization_usage(self, org_id: UUID) -> Row:
        """The organization, its plan's limits and this month's executions (``GET /org``)."""
        return await self._one("organization not found", Q.get_organization_usage, org_id)

    async def delete_expired_executions(self, now: datetime, limit: int) -> int:
        """Delete up to ``limit`` finished executions past their plan's retention at ``now``."""
        return await self._run(fetchval, Q.delete_expired_executions, now, limit)

    async def delete_stale_host_backoffs(self, older_than_s: float, limit: int) -> int:
        """Delete up to ``limit`` per-host backoff rows that ended ``older_than_s`` ago."""
        status = await self._run(
            lambda conn: conn.execute(Q.delete_stale_host_backoffs, older_than_s, limit)
        )
        return int(status.split()[-1])
