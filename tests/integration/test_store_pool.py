"""The store's connection pool (runlater/store/bridge.py ``Pool``): bounded, reused, and a
connection goes back clean or not at all."""

from __future__ import annotations

import asyncpg
import pytest
import trio

from runlater.errors import StoreUnavailable
from runlater.store import bridge
from runlater.store.session import DbTimeouts


async def _pid(conn: asyncpg.Connection) -> int:
    await conn.execute("select pg_sleep(0.01)")
    return await conn.fetchval("select pg_backend_pid()")


async def test_connections_are_bounded_and_reused(aio_loop: object, database_url: str) -> None:
    pool = await bridge.open_pool(database_url, 2)
    try:
        pids: list[int] = []

        async def unit() -> None:
            pids.append(await bridge.run(pool, _pid))

        async with trio.open_nursery() as nursery:
            for _ in range(20):
                nursery.start_soon(unit)
        assert len(pids) == 20 and len(set(pids)) <= 2
        assert pool.get_size() == pool.get_idle_size() == len(set(pids))
        assert await bridge.run(pool, _pid) in pids  # reused, not reopened
    finally:
        await bridge.close_pool(pool)
    assert pool.get_size() == 0


async def test_waiting_too_long_for_a_connection_is_unavailable(
    aio_loop: object, database_url: str
) -> None:
    pool = await bridge.open_pool(database_url, 1, DbTimeouts(connect_s=0.2))
    try:
        held = await pool.checkout()  # the only connection
        started = trio.current_time()
        with pytest.raises(StoreUnavailable, match="no connection free"):
            await bridge.run(pool, _pid)
        assert 0.2 <= trio.current_time() - started < 2
        pool.checkin(held)
        assert await bridge.run(pool, _pid) > 0
    finally:
        await bridge.close_pool(pool)


async def test_a_transaction_left_open_is_rolled_back_before_reuse(
    aio_loop: object, database_url: str
) -> None:
    pool = await bridge.open_pool(database_url, 1)

    async def leave_open(conn: asyncpg.Connection) -> int:
        await conn.execute("begin")
        await conn.execute("create table leftover (x int)")
        return await conn.fetchval("select pg_backend_pid()")

    async def check(conn: asyncpg.Connection) -> tuple[int, bool, object]:
        exists = await conn.fetchval("select to_regclass('leftover')")
        return await conn.fetchval("select pg_backend_pid()"), conn.is_in_transaction(), exists

    try:
        first = await bridge.run(pool, leave_open)
        pid, in_transaction, leftover = await bridge.run(pool, check)
        assert pid == first  # the same connection, reused
        assert (in_transaction, leftover) == (False, None)  # rolled back in between
    finally:
        await bridge.close_pool(pool)


async def test_a_broken_connection_is_dropped_and_replaced(
    aio_loop: object, database_url: str
) -> None:
    pool = await bridge.open_pool(database_url, 2)

    async def die(conn: asyncpg.Connection) -> None:
        await conn.execute("select pg_terminate_backend(pg_backend_pid())")

    try:
        first = await bridge.run(pool, _pid)
        with pytest.raises(StoreUnavailable):
            await bridge.run(pool, die)
        assert pool.get_size() == 0
        assert await bridge.run(pool, _pid) != first
        assert pool.get_size() == 1
    finally:
        await bridge.close_pool(pool)


async def test_idle_connections_are_closed(
    aio_loop: object, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    pool = await bridge.open_pool(database_url, 2)
    try:
        first = await bridge.run(pool, _pid)
        assert await bridge.run(pool, _pid) == first
        monkeypatch.setattr(bridge, "IDLE_CLOSE_S", 0.0)  # every idle one is now too old
        second = await bridge.run(pool, _pid)
        assert second != first and pool.get_size() == 1
    finally:
        await bridge.close_pool(pool)


async def test_a_pool_opens_while_the_database_is_down(aio_loop: object) -> None:
    pool = await bridge.open_pool("postgresql://runlater:x@127.0.0.1:1/nope", 2)
    with pytest.raises(StoreUnavailable):
        await bridge.run(pool, _pid)
    assert pool.get_size() == 0
    await bridge.close_pool(pool)
