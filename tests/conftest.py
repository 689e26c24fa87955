"""Session-wide Postgres for the suite, a migrated template database, and a clone per test.

The cluster is started by the suite itself with the same module `runlater serve` uses
(``runlater.store.embedded``), unless ``RUNLATER_TEST_DATABASE_URL`` points at a server.
Sync session fixtures hold it: each pytest-trio test is its own ``trio.run``.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
import trio
import trio_asyncio

from runlater.store.embedded import create_throwaway_cluster
from runlater.store.migrate import apply_migrations
from runlater.store.postgres import Store

TEMPLATE = "runlater_template"


def with_database(dsn: str, name: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path="/" + name))


def _admin(dsn: str, *statements: str) -> None:
    async def go() -> None:
        conn = await asyncpg.connect(with_database(dsn, "postgres"))
        try:
            for statement in statements:
                await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(go())


@pytest.fixture(scope="session")
def pg_server_dsn() -> Iterator[str]:
    """DSN of a superuser connection to the suite's Postgres server."""
    external = os.environ.get("RUNLATER_TEST_DATABASE_URL")
    if external:
        yield external
        return
    cluster = create_throwaway_cluster()
    try:
        yield cluster.dsn
    finally:
        cluster.destroy()


@pytest.fixture(scope="session")
def template_dsn(pg_server_dsn: str) -> str:
    _admin(pg_server_dsn, f"drop database if exists {TEMPLATE}", f"create database {TEMPLATE}")
    dsn = with_database(pg_server_dsn, TEMPLATE)

    async def migrate() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await apply_migrations(conn)
        finally:
            await conn.close()

    asyncio.run(migrate())
    return dsn


def clone_database(pg_server_dsn: str) -> str:
    # FILE_COPY: for a small template much faster than Postgres 15's default WAL_LOG.
    name = f"t_{uuid.uuid4().hex[:16]}"
    _admin(pg_server_dsn, f"create database {name} template {TEMPLATE} strategy file_copy")
    return name


@pytest.fixture
def database_url(pg_server_dsn: str, template_dsn: str) -> Iterator[str]:
    """A fresh migrated database for this test (a clone of the template). On the suite's own
    throwaway cluster clones are left for the cluster's removal; on an external server they
    are dropped."""
    name = clone_database(pg_server_dsn)
    try:
        yield with_database(pg_server_dsn, name)
    finally:
        if os.environ.get("RUNLATER_TEST_DATABASE_URL"):
            _admin(pg_server_dsn, f"drop database if exists {name} with (force)")


@pytest.fixture
async def aio_loop() -> AsyncIterator[object]:
    async with trio_asyncio.open_loop() as loop:
        yield loop


@pytest.fixture
async def store(aio_loop: object, database_url: str) -> AsyncIterator[Store]:
    s = await Store.open(database_url, pool_size=6)
    try:
        yield s
    finally:
        with trio.CancelScope(shield=True):
            await s.close()
