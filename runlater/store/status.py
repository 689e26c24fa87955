"""Store methods for status pages, badges and Runlater's own status (migration 019)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from runlater.errors import Conflict
from runlater.store.base import StoreBase, execute_count, fetch, fetchrow
from runlater.store.queries import Q
from runlater.store.records import Row


class SlugTaken(Conflict):
    """Another organization's status page has the slug."""


async def _put(
    conn: asyncpg.Connection, org_id: UUID, enabled: bool, slug: str, title: str, items: Any
) -> Row:
    try:
        async with conn.transaction():
            found = await conn.fetchrow(Q.put_status_page, org_id, enabled, slug, title, items)
    except asyncpg.UniqueViolationError:
        raise SlugTaken(slug) from None
    return dict(found)


class StatusStore(StoreBase):
    async def get_status_page(self, org_id: UUID) -> Row:
        return await self._one("organization not found", Q.get_status_page, org_id)

    async def put_status_page(
        self, org_id: UUID, *, enabled: bool, slug: str, title: str, items: list[Row]
    ) -> Row:
        """SlugTaken when another organization's page has ``slug``."""
        found: Row = await self._run(_put, org_id, enabled, slug, title, items)
        return found

    async def existing_items(
        self, org_id: UUID, kinds: Sequence[str], refs: Sequence[str]
    ) -> set[int]:
        """The 1-based positions of the items the organization has."""
        rows = await self._run(fetch, Q.existing_items, org_id, list(kinds), list(refs))
        return {int(r["pos"]) for r in rows}

    async def status_page_by_slug(self, slug: str) -> Row | None:
        return await self._run(fetchrow, Q.status_page_by_slug, slug)

    async def status_items(
        self, org_id: UUID, kinds: Sequence[str], refs: Sequence[str], now: datetime
    ) -> list[Row]:
        return await self._run(fetch, Q.status_items, org_id, list(kinds), list(refs), now)

    async def badge(self, token: str, now: datetime) -> Row | None:
        return await self._run(fetchrow, Q.badge_by_token, token, now)

    async def system_status(self) -> Row:
        found = await self._run(fetchrow, Q.system_status)
        assert found is not None
        return found

    async def delete_old_resource_days(self, now: datetime, limit: int) -> int:
        deleted: int = await self._run(execute_count, Q.delete_old_resource_days, now, limit)
        return deleted
