"""What every part of the store shares: the pool, one-crossing units of work, row helpers.

``Store`` (``postgres.py``) is assembled from per-area classes (tasks, queues, usage, bulk
writes) that all derive from :class:`StoreBase`; each area keeps its SQL in ``sql/<area>.sql``.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from runlater.errors import NotFound
from runlater.store import bridge
from runlater.store.records import Row


def row(record: asyncpg.Record | None) -> Row | None:
    return dict(record) if record is not None else None


# Units of work (asyncio side): each takes the connection first and runs inside one crossing.


async def fetch(conn: asyncpg.Connection, sql: str, *args: Any) -> list[Row]:
    return [dict(r) for r in await conn.fetch(sql, *args)]


async def fetchrow(conn: asyncpg.Connection, sql: str, *args: Any) -> Row | None:
    return row(await conn.fetchrow(sql, *args))


async def fetchval(conn: asyncpg.Connection, sql: str, *args: Any) -> Any:
    return await conn.fetchval(sql, *args)


class StoreBase:
    """The pool and the two ways to use it; :meth:`open` and :meth:`close` it."""

    def __init__(self, pool: asyncpg.Pool, dsn: str) -> None:
        self._pool = pool
        self.dsn = dsn

    @classmethod
    async def open(cls, dsn: str, *, pool_size: int = 10) -> Any:
        return cls(await bridge.open_pool(dsn, pool_size), dsn)

    async def close(self) -> None:
        await bridge.close_pool(self._pool)

    async def _run(self, unit: Any, *args: Any) -> Any:
        """Run ``unit(conn, *args)`` on the asyncio side in one crossing."""
        return await bridge.run(self._pool, unit, *args)

    async def _one(self, missing: str, sql: str, *args: Any) -> Row:
        """The one row ``sql`` returns, or NotFound(``missing``)."""
        found = await self._run(fetchrow, sql, *args)
        if found is None:
            raise NotFound(missing)
        return found
