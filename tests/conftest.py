"""Session-wide Postgres for the suite, a migrated template database, and a clone per test.

The cluster is started by the suite itself with the same module `runlater serve` uses
(``runlater.store.embedded``), unless ``RUNLATER_TEST_DATABASE_URL`` points at a server.
Sync session fixtures hold it: each pytest-trio test is its own ``trio.run``.
"""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
import trio

from runlater.store import bridge
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
    cluster = create_throwaway_cluster(ephemeral=True)
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


class ClonePool:
    """Clones of the template made ahead, and used ones dropped, by one background thread.

    A clone costs tens of milliseconds of checkpoint and file copy; made while the previous
    tests run (they mostly wait on sockets and timers), it is ready when the next test asks.
    Dropping used clones as the suite goes keeps the cluster small, so its removal at the end
    is quick. The thread has its own connection to the ``postgres`` database; a failure there
    is raised in the test that asks for the next clone.
    """

    def __init__(self, server_dsn: str, ahead: int = 2) -> None:
        self._server_dsn = server_dsn
        self._ahead = ahead
        self._ready: list[str] = []
        self._used: list[str] = []
        self._error: BaseException | None = None
        self._closing = False
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="clone-pool", daemon=True)
        self._thread.start()

    def take(self) -> str:
        """The name of a fresh clone of the template (waits for one when none is ready)."""
        with self._changed:
            if not self._changed.wait_for(lambda: self._ready or self._error, timeout=120):
                raise TimeoutError("no clone of the template database within 120 s")
            if self._error is not None:
                raise RuntimeError("the clone pool failed") from self._error
            name = self._ready.pop(0)
            self._changed.notify_all()
            return name

    def give_back(self, name: str) -> None:
        """Drop ``name`` soon (the test that used it is done)."""
        with self._changed:
            self._used.append(name)
            self._changed.notify_all()

    def close(self) -> None:
        """Drop what is left, then stop the thread."""
        with self._changed:
            self._closing = True
            self._changed.notify_all()
        self._thread.join(timeout=120)

    def _next_job(self) -> tuple[str, str] | None:
        with self._changed:
            while True:
                if len(self._ready) < self._ahead and not self._closing:
                    return "create", f"t_{uuid.uuid4().hex[:16]}"
                if self._used:
                    return "drop", self._used.pop(0)
                if self._closing:
                    self._used.extend(self._ready)
                    self._ready.clear()
                    if not self._used:
                        return None
                    continue
                self._changed.wait()

    def _run(self) -> None:
        async def work() -> None:
            conn = await asyncpg.connect(with_database(self._server_dsn, "postgres"))
            try:
                while (job := self._next_job()) is not None:
                    action, name = job
                    if action == "create":
                        # FILE_COPY: for a small template much faster than Postgres 15's
                        # default WAL_LOG.
                        await conn.execute(
                            f"create database {name} template {TEMPLATE} strategy file_copy"
                        )
                        with self._changed:
                            self._ready.append(name)
                            self._changed.notify_all()
                    else:
                        await conn.execute(f"drop database if exists {name} with (force)")
            finally:
                await conn.close()

        try:
            asyncio.run(work())
        except BaseException as exc:  # handed to the next take()
            with self._changed:
                self._error = exc
                self._changed.notify_all()


@pytest.fixture(scope="session")
def clone_pool(pg_server_dsn: str, template_dsn: str) -> Iterator[ClonePool]:
    pool = ClonePool(pg_server_dsn)
    try:
        yield pool
    finally:
        pool.close()


@pytest.fixture
def database_url(pg_server_dsn: str, clone_pool: ClonePool) -> Iterator[str]:
    """A fresh migrated database for this test (a clone of the template), dropped after it."""
    name = clone_pool.take()
    try:
        yield with_database(pg_server_dsn, name)
    finally:
        clone_pool.give_back(name)


@pytest.fixture
async def aio_loop() -> AsyncIterator[object]:
    async with bridge.open_loop() as loop:
        yield loop


@pytest.fixture
async def store(aio_loop: object, database_url: str) -> AsyncIterator[Store]:
    s = await Store.open(database_url, pool_size=6)
    try:
        yield s
    finally:
        with trio.CancelScope(shield=True):
            await s.close()
