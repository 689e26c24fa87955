"""Store methods for the dead-letter queue: executions that failed for good.

Dead letters are written by the database itself (migration 022's trigger on executions), so
every way an execution fails for good lands here; these methods read them, retry them (a new
attempt, in the same transaction as the letter's removal) and delete them. Every query takes
the organization id: another organization's letter is not found.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

import asyncpg

from runlater.errors import NotFound
from runlater.store import bridge
from runlater.store.base import StoreBase, fetch, fetchrow
from runlater.store.queries import Q
from runlater.store.records import Row

# The executions.attempt check: a chain has a first attempt and up to 10 retries.
MAX_ATTEMPT = 11


@dataclass(frozen=True, slots=True)
class DeadLetterFilter:
    """Which letters a list or bulk action covers; None = any. ``url`` is a piece of the URL
    (case-insensitive); ``since`` is inclusive, ``until`` exclusive (the failure's time)."""

    task_id: UUID | None = None
    queue: str | None = None
    url: str | None = None
    status_code: int | None = None
    since: datetime | None = None
    until: datetime | None = None

    def args(self) -> tuple[Any, ...]:
        """The filters' query parameters ($2 to $7 of sql/dlq.sql)."""
        return (self.task_id, self.queue, self.url, self.status_code, self.since, self.until)


@dataclass(frozen=True, slots=True)
class BulkResult:
    """What a bulk action did: ``rows`` per letter acted on (oldest first), and whether more
    letters matched than it took (filter mode only)."""

    rows: list[Row]
    has_more: bool


async def _pick(
    conn: asyncpg.Connection,
    org_id: UUID,
    ids: Sequence[UUID] | None,
    where: DeadLetterFilter,
    limit: int,
) -> tuple[list[UUID], bool]:
    found = await conn.fetch(
        Q.pick_dead_letters, org_id, *where.args(), None if ids is None else list(ids), limit + 1
    )
    return [r["id"] for r in found[:limit]], len(found) > limit


async def _retry(
    conn: asyncpg.Connection,
    org_id: UUID,
    ids: Sequence[UUID] | None,
    where: DeadLetterFilter,
    limit: int,
) -> BulkResult:
    async with bridge.transaction(conn):
        chosen, more = await _pick(conn, org_id, ids, where, limit)
        if not chosen:
            return BulkResult([], more)
        await conn.execute(Q.mark_new_work)  # a plan's hard monthly limit refuses it
        rows = await conn.fetch(Q.retry_dead_letters, org_id, chosen, MAX_ATTEMPT)
        await conn.execute(Q.notify_executions, "")
        return BulkResult([dict(r) for r in rows], more)


async def _delete(
    conn: asyncpg.Connection,
    org_id: UUID,
    ids: Sequence[UUID] | None,
    where: DeadLetterFilter,
    limit: int,
) -> BulkResult:
    async with bridge.transaction(conn):
        chosen, more = await _pick(conn, org_id, ids, where, limit)
        if not chosen:
            return BulkResult([], more)
        rows = await conn.fetch(Q.delete_dead_letters, org_id, chosen)
        return BulkResult([dict(r) for r in rows], more)


class DeadLetterPort(Protocol):
    """The dead-letter calls the domain (``domain/dlq.py``) and the web layer make."""

    async def list_dead_letters(
        self,
        org_id: UUID,
        where: DeadLetterFilter,
        *,
        before: UUID | None = None,
        limit: int,
        offset: int = 0,
    ) -> list[Row]: ...

    async def get_dead_letter(self, org_id: UUID, dead_letter_id: UUID) -> Row: ...

    async def retry_dead_letters(
        self, org_id: UUID, ids: Sequence[UUID] | None, where: DeadLetterFilter, limit: int
    ) -> BulkResult: ...

    async def delete_dead_letters(
        self, org_id: UUID, ids: Sequence[UUID] | None, where: DeadLetterFilter, limit: int
    ) -> BulkResult: ...


class DeadLetterStore(StoreBase):
    async def list_dead_letters(
        self,
        org_id: UUID,
        where: DeadLetterFilter,
        *,
        before: UUID | None = None,
        limit: int,
        offset: int = 0,
    ) -> list[Row]:
        """Newest first, each row with ``total`` (the matching count from ``before`` on).
        ``before``: a cursor, the id of the last letter of the previous page."""
        return await self._run(
            fetch, Q.list_dead_letters, org_id, *where.args(), before, limit, offset
        )

    async def get_dead_letter(self, org_id: UUID, dead_letter_id: UUID) -> Row:
        found = await self._run(fetchrow, Q.get_dead_letter, org_id, dead_letter_id)
        if found is None:
            raise NotFound("dead letter not found")
        return found

    async def retry_dead_letters(
        self,
        org_id: UUID,
        ids: Sequence[UUID] | None,
        where: DeadLetterFilter,
        limit: int,
    ) -> BulkResult:
        """A new attempt for each letter (``ids``, or every one ``where`` matches when ``ids``
        is None; at most ``limit``, oldest first), the letters removed, in one transaction.
        Raises LimitExceeded (nothing retried) over a hard monthly limit."""
        result: BulkResult = await self._run(_retry, org_id, ids, where, limit)
        return result

    async def delete_dead_letters(
        self,
        org_id: UUID,
        ids: Sequence[UUID] | None,
        where: DeadLetterFilter,
        limit: int,
    ) -> BulkResult:
        """Delete letters (as :meth:`retry_dead_letters` picks them); rows carry ``id``."""
        result: BulkResult = await self._run(_delete, org_id, ids, where, limit)
        return result
