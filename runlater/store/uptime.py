"""Store methods for HTTP uptime checks: the resource, its results and uptime, and the
UptimeChecker's claim and record (see migration 018)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg

from runlater.errors import NotFound
from runlater.store import bridge
from runlater.store.base import StoreBase, execute_count, fetch, fetchrow, fetchval
from runlater.store.monitors import NameTaken
from runlater.store.queries import Q
from runlater.store.records import Row


@dataclass(frozen=True, slots=True)
class UptimeResult:
    check_id: UUID
    at: datetime
    ok: bool
    status_code: int | None
    response_ms: int | None
    error: str | None


async def _insert(conn: asyncpg.Connection, org_id: UUID, row: Row) -> Row:
    try:
        async with conn.transaction():
            found = await conn.fetchrow(Q.insert_uptime_check, org_id, row)
    except asyncpg.UniqueViolationError:
        raise NameTaken(row["name"]) from None
    return dict(found)


async def _update(
    conn: asyncpg.Connection, org_id: UUID, check_id: UUID, plan: Callable[[Row], Row]
) -> Row | None:
    async with bridge.transaction(conn):
        current = await conn.fetchrow(Q.get_uptime_check_for_update, org_id, check_id)
        if current is None:
            return None
        changes = plan(dict(current))
        try:
            async with conn.transaction():
                found = await conn.fetchrow(Q.update_uptime_check, org_id, check_id, changes)
        except asyncpg.UniqueViolationError:
            raise NameTaken(changes["name"]) from None
        return dict(found) if found is not None else None


async def _results(
    conn: asyncpg.Connection, org_id: UUID, check_id: UUID, limit: int, offset: int
) -> list[Row]:
    if await conn.fetchrow(Q.get_uptime_check, org_id, check_id) is None:
        raise NotFound("uptime check not found")
    rows = await conn.fetch(Q.list_uptime_results, org_id, check_id, limit, offset)
    return [dict(r) for r in rows]


class UptimeStore(StoreBase):
    async def insert_uptime_check(self, org_id: UUID, row: Row) -> Row:
        """NameTaken when the organization has a check of that name."""
        found: Row = await self._run(_insert, org_id, row)
        return found

    async def get_uptime_check(self, org_id: UUID, check_id: UUID, now: datetime) -> Row:
        """The check with its ``uptime`` at ``now``."""
        return await self._one(
            "uptime check not found", Q.get_uptime_check_with_uptime, org_id, check_id, now
        )

    async def list_uptime_checks(
        self, org_id: UUID, now: datetime, *, limit: int, offset: int
    ) -> list[Row]:
        return await self._run(fetch, Q.list_uptime_checks, org_id, limit, offset, now)

    async def update_uptime_check(
        self, org_id: UUID, check_id: UUID, plan: Callable[[Row], Row]
    ) -> Row:
        found = await self._run(_update, org_id, check_id, plan)
        if found is None:
            raise NotFound("uptime check not found")
        return found

    async def delete_uptime_check(self, org_id: UUID, check_id: UUID) -> None:
        if await self._run(fetchval, Q.delete_uptime_check, org_id, check_id) is None:
            raise NotFound("uptime check not found")

    async def list_uptime_results(
        self, org_id: UUID, check_id: UUID, *, limit: int, offset: int
    ) -> list[Row]:
        return await self._run(_results, org_id, check_id, limit, offset)

    async def uptime_days(self, check_id: UUID, now: datetime) -> list[Row]:
        return await self._run(fetch, Q.uptime_days_of, check_id, now)

    # -- the UptimeChecker (leader)

    async def claim_due_uptime_checks(self, now: datetime, limit: int) -> list[Row]:
        return await self._run(fetch, Q.claim_due_uptime_checks, now, limit)

    async def next_uptime_check_at(self) -> datetime | None:
        return await self._run(fetchval, Q.next_uptime_check_at)

    async def record_uptime_result(self, result: UptimeResult) -> Row | None:
        """One statement: the result, the day's aggregate, the check's state, the event."""
        return await self._run(
            fetchrow,
            Q.record_uptime_result,
            result.check_id,
            result.at,
            result.ok,
            result.status_code,
            result.response_ms,
            result.error,
        )

    # -- the janitor

    async def delete_old_uptime_results(self, now: datetime, limit: int) -> int:
        deleted: int = await self._run(execute_count, Q.delete_old_uptime_results, now, limit)
        return deleted

    async def delete_old_uptime_days(self, now: datetime, limit: int) -> int:
        deleted: int = await self._run(execute_count, Q.delete_old_uptime_days, now, limit)
        return deleted
