"""The single crossing between trio and asyncpg (which runs on asyncio via trio-asyncio).

Every database call goes through :func:`run`: a *unit of work* is one asyncio coroutine
``unit(conn, *args)`` executed in a single crossing. A trio cancel that lands while it runs is
turned into an asyncio cancel of the whole unit, and trio-asyncio waits for the coroutine to
finish (its ``abort`` answers FAILED), so ``conn.transaction()`` rolls back and the connection is
tidied before the caller sees ``trio.Cancelled``. Crossing several times inside one
transaction would lose that guarantee (stack-notes.md, trap 4): units never do. The pool
(:class:`Pool`) lives on the trio side, so checking a connection out and back costs no crossing.

Driver errors are translated here into ``runlater.errors`` types, the original as ``__cause__``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg
import trio
import trio_asyncio

from runlater.errors import (
    Conflict,
    LimitExceeded,
    StoreError,
    StoreUnavailable,
    TransientConflict,
)

T = TypeVar("T")
Unit = Callable[..., Awaitable[T]]

CONNECT_TIMEOUT_S = 5.0
COMMAND_TIMEOUT_S = 60.0
RELEASE_TIMEOUT_S = 5.0
IDLE_CLOSE_S = 60.0

# SQLSTATE classes/codes that mean "the database is not reachable right now".
_UNAVAILABLE_STATES = ("08", "57P01", "57P02", "57P03", "53300", "53400")
_CONFLICT_STATES = ("23505",)
_TRANSIENT_CONFLICT_STATES = ("40001", "40P01", "55P03")
# Raised by the plan-limit triggers (migration 006), the field in COLUMN.
_LIMIT_EXCEEDED_STATE = "RLLIM"


def translate(exc: BaseException) -> BaseException:
    """Map a driver/OS error to the project's exception (returns ``exc`` if it is not one)."""
    if isinstance(exc, StoreError | asyncio.CancelledError):
        return exc
    if isinstance(exc, asyncpg.PostgresError):
        state = getattr(exc, "sqlstate", "") or ""
        if state.startswith(_UNAVAILABLE_STATES):
            return StoreUnavailable(f"database unavailable: {exc}")
        if state in _TRANSIENT_CONFLICT_STATES:
            return TransientConflict(str(exc))
        if state in _CONFLICT_STATES:
            return Conflict(str(exc))
        if state == _LIMIT_EXCEEDED_STATE:
            message = getattr(exc, "message", None) or str(exc)
            return LimitExceeded(message, getattr(exc, "column_name", None) or "plan")
        return StoreError(f"database error {state}: {exc}")
    # InternalClientError: the server dropped the connection in the middle of an operation.
    if isinstance(
        exc,
        asyncpg.InterfaceError
        | asyncpg.InternalClientError
        | OSError
        | TimeoutError
        | asyncio.TimeoutError,
    ):
        return StoreUnavailable(f"database unavailable: {type(exc).__name__}: {exc}")
    return exc


async def _init_connection(conn: asyncpg.Connection) -> None:
    for typename in ("json", "jsonb"):
        await conn.set_type_codec(
            typename, encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
        )


async def _aio_connect(dsn: str) -> asyncpg.Connection:
    conn = await asyncpg.connect(dsn, timeout=CONNECT_TIMEOUT_S, command_timeout=COMMAND_TIMEOUT_S)
    try:
        await _init_connection(conn)
    except BaseException:
        conn.terminate()
        raise
    return conn


class Pool:
    """Up to ``size`` connections for units of work, checked out and back on the trio side.

    Only the unit itself crosses into asyncio. (asyncpg's own pool, driven through
    trio-asyncio, cost ~270 µs of CPU per unit of work on top of the query: its acquire and
    release run extra asyncio tasks, timeouts, a shield and an inactivity timer, and every
    one of those callbacks is a trip through trio-asyncio's event queue.)

    Connections are opened on demand (the pool exists while Postgres is down), reused most
    recently used first, and closed once idle for ``IDLE_CLOSE_S``. Waiting longer than
    ``CONNECT_TIMEOUT_S`` for a free one raises StoreUnavailable, as asyncpg's pool did.
    Units change no session state (no SET, no LISTEN, only transaction-scoped advisory
    locks), so a returned connection is only rolled back if a transaction was left open.
    """

    def __init__(self, dsn: str, size: int) -> None:
        self.dsn = dsn
        self.size = size
        self._slots = trio.Semaphore(size)
        self._idle: list[tuple[asyncpg.Connection, float]] = []  # (connection, idle since)
        self._open = 0
        self._closed = False

    def get_size(self) -> int:
        """Connections open (idle or in use)."""
        return self._open

    def get_idle_size(self) -> int:
        return len(self._idle)

    async def checkout(self) -> asyncpg.Connection:
        try:
            self._slots.acquire_nowait()
        except trio.WouldBlock:
            with trio.move_on_after(CONNECT_TIMEOUT_S) as waited:
                await self._slots.acquire()
            if waited.cancelled_caught:
                raise StoreUnavailable(
                    f"database unavailable: no connection free within {CONNECT_TIMEOUT_S} s"
                ) from None
        try:
            return await self._take()
        except BaseException:
            self._slots.release()
            raise

    async def _take(self) -> asyncpg.Connection:
        if self._closed:
            raise StoreUnavailable("database unavailable: the pool is closed")
        now = trio.current_time()
        while self._idle and now - self._idle[0][1] >= IDLE_CLOSE_S:
            await self._close(self._idle.pop(0)[0])
        while self._idle:
            conn, _ = self._idle.pop()
            if not conn.is_closed():
                return conn
            self._open -= 1
        self._open += 1
        try:
            return await trio_asyncio.aio_as_trio(_aio_connect)(self.dsn)
        except BaseException as exc:
            self._open -= 1
            if isinstance(exc, Exception):
                raise translate(exc) from exc
            raise

    def checkin(self, conn: asyncpg.Connection) -> None:
        if conn.is_closed() or self._closed:
            self._open -= 1
            conn.terminate()
        else:
            self._idle.append((conn, trio.current_time()))
        self._slots.release()

    async def _close(self, conn: asyncpg.Connection) -> None:
        self._open -= 1
        with trio.CancelScope(shield=True):
            try:
                await trio_asyncio.aio_as_trio(conn.close)(timeout=RELEASE_TIMEOUT_S)
            except Exception:
                conn.terminate()

    async def close(self) -> None:
        """Close the idle connections; those in use are closed when they come back."""
        self._closed = True
        while self._idle:
            await self._close(self._idle.pop()[0])


async def open_pool(dsn: str, size: int) -> Pool:
    return Pool(dsn, size)


async def close_pool(pool: Pool) -> None:
    await pool.close()


async def _aio_run(conn: asyncpg.Connection, unit: Unit[T], args: tuple[Any, ...]) -> T:
    try:
        return await unit(conn, *args)
    except Exception as exc:
        mapped = translate(exc)
        if isinstance(mapped, StoreUnavailable):
            # A connection that failed mid-operation may be in a broken protocol state where
            # tidying it waits forever: close it instead.
            conn.terminate()
        if mapped is exc:
            raise
        raise mapped from exc
    finally:
        await _tidy(conn)


async def _tidy(conn: asyncpg.Connection) -> None:
    """What asyncpg's pool does on release, without its complaint through the loop's exception
    handler (which trio-asyncio raises into the loop): roll back a transaction the unit left
    open (a statement still being cancelled is waited out first by asyncpg). No I/O unless
    needed. A connection that cannot be tidied is terminated."""
    if conn.is_closed():
        return
    if not conn.is_in_transaction() and conn._top_xact is None:  # type: ignore[attr-defined]
        return
    try:
        conn._top_xact = None  # type: ignore[attr-defined]
        await conn.execute("ROLLBACK")
    except (Exception, asyncio.CancelledError):
        conn.terminate()


async def run(pool: Pool, unit: Unit[T], *args: Any) -> T:
    """Run ``unit(conn, *args)`` on a pooled connection in one crossing."""
    conn = await pool.checkout()
    try:
        return await trio_asyncio.aio_as_trio(_aio_run)(conn, unit, args)
    finally:
        pool.checkin(conn)


async def connect(dsn: str) -> asyncpg.Connection:
    """A dedicated connection (LISTEN needs one that the pool never resets)."""
    try:
        return await trio_asyncio.aio_as_trio(asyncpg.connect)(
            dsn, timeout=CONNECT_TIMEOUT_S, command_timeout=COMMAND_TIMEOUT_S
        )
    except Exception as exc:
        raise translate(exc) from exc


async def call(fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
    """Await an asyncio-side coroutine function (e.g. a method of a dedicated connection)."""
    try:
        return await trio_asyncio.aio_as_trio(fn)(*args, **kwargs)
    except Exception as exc:
        mapped = translate(exc)
        if mapped is exc:
            raise
        raise mapped from exc
