"""What every part of the store shares: the pool, one-crossing units of work, row helpers.

``Store`` (``postgres.py``) is assembled from per-area classes (tasks, queues, usage, bulk
writes) that all derive from :class:`StoreBase`; each area keeps its SQL in ``sql/<area>.sql``.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from runlater.errors import NotFound
from runlater.store import bridge, transaction
from runlater.store.readiness import ReadinessProbe
from runlater.store.records import Row
from runlater.store.session import DEFAULT_TIMEOUTS, DbTimeouts


def row(record: asyncpg.Record | None) -> Row | None:
    return dict(record) if record is not None else None


# Units of work (asyncio side): each takes the connection first and runs inside one crossing.


async def fetch(conn: asyncpg.Connection, sql: str, *args: Any) -> list[Row]:
    return [dict(r) for r in await conn.fetch(sql, *args)]


async def fetchrow(conn: asyncpg.Connection, sql: str, *args: Any) -> Row | None:
    return row(await conn.fetchrow(sql, *args))


async def fetchval(conn: asyncpg.Connection, sql: str, *args: Any) -> Any:
    return await conn.fetchval(sql, *args)


async def execute_count(conn: asyncpg.Connection, sql: str, *args: Any) -> int:
    """How many rows the statement changed (its command tag's count)."""
    status = await conn.execute(sql, *args)
    return int(status.split()[-1])


class StoreBase:
    """The pool and the two ways to use it; :meth:`open` and :meth:`close` it."""

    def __init__(self, pool: bridge.Pool, dsn: str) -> None:
        self._pool = pool
        self.dsn = dsn
        self._readiness = ReadinessProbe(dsn, pool.timeouts, f"{pool.application_name} readiness")

    @property
    def timeouts(self) -> DbTimeouts:
        return self._pool.timeouts

    @property
    def application_name(self) -> str:
        return self._pool.application_name

    @property
    def pool_size(self) -> int:
        return self._pool.size

    def pool_in_use(self) -> int:
        """Connections lent out right now (for ``/metrics``)."""
        return self._pool.in_use()

    @classmethod
    async def open(
        cls,
        dsn: str,
        *,
        pool_size: int = 10,
        timeouts: DbTimeouts = DEFAULT_TIMEOUTS,
        application_name: str = "runlater",
    ) -> Any:
        """``timeouts``: the session limits of every connection (``session.py``);
        ``application_name`` shows in ``pg_stat_activity``."""
        return cls(await bridge.open_pool(dsn, pool_size, timeouts, application_name), dsn)

    async def close(self) -> None:
        self._readiness.close()
        await bridge.close_pool(self._pool)

    async def ready(self, deadline_s: float) -> bool:
        """Whether the database answers within ``deadline_s``, asked on a connection of its
        own (never behind the pool's traffic): ``readiness.py``."""
        return await self._readiness.check(deadline_s)

    @property
    def last_ready(self) -> bool | None:
        """The last readiness answer (None: never asked)."""
        return self._readiness.last_ok

    async def _run(self, unit: Any, *args: Any) -> Any:
        """Run ``unit(conn, *args)`` on the asyncio side in one crossing: inside the current
        request's transaction when there is one (``transaction.py``), else on its own."""
        tx = transaction.current.get()
        if tx is not None and tx.pool is self._pool:
            return await tx.run(unit, *args)
        return await bridge.run(self._pool, unit, *args)

    def request_transaction(
        self, key: transaction.IdempotencyKey | None = None
    ) -> transaction.RequestTransaction:
        """A transaction for one API request (not begun yet; make it current to use it)."""
        return transaction.RequestTransaction(self._pool, key)

    async def _one(self, missing: str, sql: str, *args: Any) -> Row:
        """The one row ``sql`` returns, or NotFound(``missing``)."""
        found = await self._run(fetchrow, sql, *args)
        if found is None:
            raise NotFound(missing)
        return found
