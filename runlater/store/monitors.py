"""Store methods for heartbeat monitors: the resource, its pings, and the Monitor's tick.

A ping is one statement (``ping_monitor``); the Monitor's tick is one statement
(``mark_overdue_monitors``) over a partial index. See migration 016 for why a cron monitor
carries its upcoming instants.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

import asyncpg

from runlater.errors import Conflict, NotFound
from runlater.store import bridge
from runlater.store.base import StoreBase, execute_count, fetch, fetchrow, fetchval
from runlater.store.bulk import TaskSyncResult, run_sync
from runlater.store.queries import Q
from runlater.store.records import Row


@dataclass(frozen=True, slots=True)
class Ping:
    """One ping as received: what it asks, and what is recorded with it."""

    token: UUID
    kind: str
    exit_status: int | None
    rid: UUID | None
    at: datetime
    method: str
    source_ip: str | None
    user_agent: str | None
    body: bytes
    body_truncated: bool


@dataclass(frozen=True, slots=True)
class CronRefresh:
    """New upcoming instants of a cron monitor, for the schedule they were computed from."""

    monitor_id: UUID
    expression: str
    timezone: str
    upcoming: Sequence[datetime]
    refresh_at: datetime


@dataclass(frozen=True, slots=True)
class MonitorSyncPlan:
    """What a sync writes: new monitors' rows by name, edits' columns by name and id."""

    create: list[tuple[str, Row]] = field(default_factory=list)
    update: list[tuple[str, UUID, Row]] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)


DecideMonitors = Callable[[list[Row]], MonitorSyncPlan]


class NameTaken(Conflict):
    """Another monitor of the organization has the name (names are unique: sync matches by
    name)."""


async def _insert_monitor(conn: asyncpg.Connection, org_id: UUID, row: Row) -> Row:
    try:
        async with conn.transaction():  # a savepoint inside a request's transaction
            found = await conn.fetchrow(Q.insert_monitor, org_id, row)
    except asyncpg.UniqueViolationError:
        raise NameTaken(row["name"]) from None
    return dict(found)


async def _update_monitor(
    conn: asyncpg.Connection, org_id: UUID, monitor_id: UUID, plan: Callable[[Row], Row]
) -> Row | None:
    async with bridge.transaction(conn):
        current = await conn.fetchrow(Q.get_monitor_for_update, org_id, monitor_id)
        if current is None:
            return None
        changes = plan(dict(current))
        try:
            async with conn.transaction():
                found = await conn.fetchrow(Q.update_monitor, org_id, monitor_id, changes)
        except asyncpg.UniqueViolationError:
            raise NameTaken(changes["name"]) from None
        return dict(found) if found is not None else None


async def _list_pings(
    conn: asyncpg.Connection, org_id: UUID, monitor_id: UUID, limit: int, offset: int
) -> list[Row]:
    if await conn.fetchrow(Q.get_monitor, org_id, monitor_id) is None:
        raise NotFound("monitor not found")
    return [
        dict(r) for r in await conn.fetch(Q.list_monitor_pings, org_id, monitor_id, limit, offset)
    ]


async def _refresh(conn: asyncpg.Connection, refreshes: Sequence[CronRefresh]) -> None:
    async with bridge.transaction(conn):
        await conn.executemany(
            Q.refresh_cron_upcoming,
            [
                (r.monitor_id, r.expression, r.timezone, list(r.upcoming), r.refresh_at)
                for r in refreshes
            ],
        )


async def _apply_monitor_sync(
    conn: asyncpg.Connection,
    org_id: UUID,
    names: list[str],
    decide: DecideMonitors,
    delete_removed: bool,
) -> TaskSyncResult:
    await conn.execute(Q.lock_org_sync, org_id)
    existing = [dict(r) for r in await conn.fetch(Q.lock_named_monitors, org_id, names)]
    plan = decide(existing)
    deleted: list[str] = []
    if delete_removed:
        deleted = [
            r["name"] for r in await conn.fetch(Q.delete_unlisted_synced_monitors, org_id, names)
        ]
    for _, new in plan.create:
        await conn.fetchrow(Q.insert_monitor, org_id, new)
    for _, monitor_id, changes in plan.update:
        await conn.fetchrow(Q.update_monitor, org_id, monitor_id, changes)
    await conn.execute(Q.mark_synced_monitors, org_id, names)
    return TaskSyncResult(
        created=[name for name, _ in plan.create],
        updated=[name for name, _, _ in plan.update],
        deleted=sorted(deleted),
        unchanged=list(plan.unchanged),
    )


async def _sync_monitors(
    conn: asyncpg.Connection,
    org_id: UUID,
    names: list[str],
    decide: DecideMonitors,
    delete_removed: bool,
    dry_run: bool,
) -> TaskSyncResult:
    return await run_sync(
        conn, lambda: _apply_monitor_sync(conn, org_id, names, decide, delete_removed), dry_run
    )


class MonitorStore(StoreBase):
    # -- the REST resource

    async def insert_monitor(self, org_id: UUID, row: Row) -> Row:
        """NameTaken when the organization has a monitor of that name."""
        found: Row = await self._run(_insert_monitor, org_id, row)
        return found

    async def get_monitor(self, org_id: UUID, monitor_id: UUID) -> Row:
        return await self._one("monitor not found", Q.get_monitor, org_id, monitor_id)

    async def list_monitors(self, org_id: UUID, *, limit: int, offset: int) -> list[Row]:
        return await self._run(fetch, Q.list_monitors, org_id, limit, offset)

    async def update_monitor(
        self, org_id: UUID, monitor_id: UUID, plan: Callable[[Row], Row]
    ) -> Row:
        """Lock the monitor, let ``plan(current) -> every editable column`` decide, write."""
        found = await self._run(_update_monitor, org_id, monitor_id, plan)
        if found is None:
            raise NotFound("monitor not found")
        return found

    async def delete_monitor(self, org_id: UUID, monitor_id: UUID) -> None:
        if await self._run(fetchval, Q.delete_monitor, org_id, monitor_id) is None:
            raise NotFound("monitor not found")

    async def list_monitor_pings(
        self, org_id: UUID, monitor_id: UUID, *, limit: int, offset: int
    ) -> list[Row]:
        """Newest first; NotFound when the monitor is not the organization's."""
        return await self._run(_list_pings, org_id, monitor_id, limit, offset)

    async def sync_monitors(
        self,
        org_id: UUID,
        names: Sequence[str],
        decide: DecideMonitors,
        *,
        delete_removed: bool,
        dry_run: bool,
    ) -> TaskSyncResult:
        """Make the organization's monitors named ``names`` match the request (as
        ``sync_tasks`` does for tasks): one transaction, rolled back for a dry run."""
        return await self._run(_sync_monitors, org_id, list(names), decide, delete_removed, dry_run)

    # -- pings (public, by token)

    async def ping_monitor(self, ping: Ping) -> Row | None:
        """Record ``ping`` and move its monitor's state, in one statement. None: no monitor
        has the token. ``enabled`` false: nothing was written (410)."""
        return await self._run(
            fetchrow,
            Q.ping_monitor,
            ping.token,
            ping.kind,
            ping.exit_status,
            ping.rid,
            ping.at,
            ping.method,
            ping.source_ip,
            ping.user_agent,
            ping.body,
            ping.body_truncated,
        )

    async def fix_monitor_expected(
        self,
        monitor_id: UUID,
        pinged_at: datetime,
        upcoming: Sequence[datetime],
        refresh_at: datetime,
        expected: datetime,
    ) -> bool:
        """The rare second statement of a ping (see ``ping_monitor``'s ``expected_missing``)."""
        done = await self._run(
            fetchval,
            Q.fix_monitor_expected,
            monitor_id,
            pinged_at,
            list(upcoming),
            refresh_at,
            expected,
        )
        return done is not None

    # -- the Monitor actor (leader)

    async def mark_overdue_monitors(self, now: datetime, limit: int) -> list[Row]:
        """Every watched monitor whose deadline is at or before ``now`` goes down (at most
        ``limit``); the rows marked."""
        return await self._run(fetch, Q.mark_overdue_monitors, now, limit)

    async def next_monitor_deadline(self) -> datetime | None:
        return await self._run(fetchval, Q.next_monitor_deadline)

    async def cron_monitors_to_refresh(self, now: datetime, limit: int) -> list[Row]:
        return await self._run(fetch, Q.cron_monitors_to_refresh, now, limit)

    async def refresh_cron_upcoming(self, refreshes: Sequence[CronRefresh]) -> None:
        if refreshes:
            await self._run(_refresh, refreshes)

    async def delete_old_monitor_pings(self, now: datetime, limit: int) -> int:
        deleted: int = await self._run(execute_count, Q.delete_old_monitor_pings, now, limit)
        return deleted
