"""Migrations: applied once under a lock, even when several nodes start together."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import trio

from runlater.store.migrate import available
from runlater.store.postgres import Store
from tests.conftest import _admin, with_database


@pytest.fixture
def empty_database_url(pg_server_dsn: str) -> Iterator[str]:
    name = "t_empty_migrate"
    _admin(pg_server_dsn, f"drop database if exists {name}", f"create database {name}")
    yield with_database(pg_server_dsn, name)
    _admin(pg_server_dsn, f"drop database if exists {name} with (force)")


async def test_concurrent_migrations_on_an_empty_database_apply_once(
    aio_loop: object, empty_database_url: str
) -> None:
    """Four nodes migrating one empty database at once: one applies everything, three find
    nothing to do, and each migration is recorded once (the advisory lock serialises them)."""
    stores = [await Store.open(empty_database_url, pool_size=2) for _ in range(4)]
    applied: list[list[int]] = []

    async def migrate(store: Store) -> None:
        applied.append(await store.migrate())

    try:
        async with trio.open_nursery() as nursery:
            for store in stores:
                nursery.start_soon(migrate, store)
        versions = [m.version for m in available()]
        assert sorted(applied, key=len) == [[], [], [], versions]
        rows = await stores[0]._run(lambda c: c.fetch("select version from schema_migrations"))
        assert [r["version"] for r in rows] == versions
    finally:
        for store in stores:
            await store.close()
