"""The single crossing between trio and asyncpg (which runs on asyncio via trio-asyncio).

Every database call goes through :func:`run`: a *unit of work* is one asyncio coroutine
``unit(conn, *args)`` executed in a single crossing. A trio cancel that lands while it runs is
turned into an asyncio cancel of the whole unit, and trio-asyncio waits for the coroutine to
finish (its ``abort`` answers FAILED), so ``conn.transaction()`` rolls back and the connection is
released before the caller sees ``trio.Cancelled``. Crossing several times inside one
transaction would lose that guarantee (stack-notes.md, trap 4): units never do.

Driver errors are translated here into ``runlater.errors`` types, the original as ``__cause__``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg
import trio_asyncio

from runlater.errors import Conflict, StoreError, StoreUnavailable, TransientConflict

T = TypeVar("T")
Unit = Callable[..., Awaitable[T]]

CONNECT_TIMEOUT_S = 5.0
COMMAND_TIMEOUT_S = 60.0
RELEASE_TIMEOUT_S = 5.0

# SQLSTATE classes/codes that mean "the database is not reachable right now".
_UNAVAILABLE_STATES = ("08", "57P01", "57P02", "57P03", "53300", "53400")
_CONFLICT_STATES = ("23505",)
_TRANSIENT_CONFLICT_STATES = ("40001", "40P01", "55P03")


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


async def _keep_session(_conn: asyncpg.Connection) -> None:
    """Pool reset hook. asyncpg has already rolled back any open transaction; units of work
    change no session state (no SET, no LISTEN, only transaction-scoped advisory locks), so
    the default RESET ALL / UNLISTEN * / CLOSE ALL round trip on every release is skipped."""


async def _aio_create_pool(dsn: str, size: int) -> asyncpg.Pool:
    # min_size=0: the pool opens even while Postgres is down; connections come on demand.
    return await asyncpg.create_pool(
        dsn,
        min_size=0,
        max_size=size,
        init=_init_connection,
        reset=_keep_session,
        timeout=CONNECT_TIMEOUT_S,
        command_timeout=COMMAND_TIMEOUT_S,
        max_inactive_connection_lifetime=60.0,
    )


async def open_pool(dsn: str, size: int) -> asyncpg.Pool:
    try:
        return await trio_asyncio.aio_as_trio(_aio_create_pool)(dsn, size)
    except Exception as exc:
        raise translate(exc) from exc


async def close_pool(pool: asyncpg.Pool) -> None:
    try:
        await trio_asyncio.aio_as_trio(asyncio.wait_for)(pool.close(), 5.0)
    except Exception:
        pool.terminate()


async def _aio_run(pool: asyncpg.Pool, unit: Unit[T], args: tuple[Any, ...]) -> T:
    try:
        conn = await pool.acquire(timeout=CONNECT_TIMEOUT_S)
    except Exception as exc:
        raise translate(exc) from exc
    try:
        return await unit(conn, *args)
    except Exception as exc:
        mapped = translate(exc)
        if isinstance(mapped, StoreUnavailable):
            # A connection that failed mid-operation may be in a broken protocol state where
            # a normal release (which resets it) waits forever: close it instead. (If the
            # pool already detached it, the proxy refuses, which is just as good.)
            with contextlib.suppress(asyncpg.InterfaceError):
                conn.terminate()
        if mapped is exc:
            raise
        raise mapped from exc
    finally:
        # A failed release already terminated the connection inside asyncpg; the unit's own
        # result or error is what matters.
        with contextlib.suppress(Exception):
            await pool.release(conn, timeout=RELEASE_TIMEOUT_S)


async def run(pool: asyncpg.Pool, unit: Unit[T], *args: Any) -> T:
    """Run ``unit(conn, *args)`` on a pooled connection in one crossing."""
    return await trio_asyncio.aio_as_trio(_aio_run)(pool, unit, args)


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
