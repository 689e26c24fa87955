"""Raw database sessions for tests: another session than the store's pool, as another node's
would be (to expire leases, inspect pg_stat_activity, break things on purpose)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import trio
import trio_asyncio


@asynccontextmanager
async def raw_connection(dsn: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await trio_asyncio.aio_as_trio(asyncpg.connect)(dsn)
    try:
        yield conn
    finally:
        with trio.CancelScope(shield=True):
            await trio_asyncio.aio_as_trio(conn.close)()


async def sql(conn: asyncpg.Connection, query: str, *args: Any) -> list[dict[str, Any]]:
    return [dict(r) for r in await trio_asyncio.aio_as_trio(conn.fetch)(query, *args)]
