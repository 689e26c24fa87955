"""The single crossing between trio and asyncpg (which runs on asyncio via trio-asyncio).

Every database call goes through :func:`run`: a *unit of work* is one asyncio coroutine
``unit(conn, *args)`` executed in a single crossing, under a deadline (a trio cancel scope:
``DbTimeouts.unit_deadline_s``). Crossing several times inside one transaction would lose the
guarantees below (stack-notes.md, trap 4): units never do, except a request's transaction
(``transaction.py``), which holds its connection and ends it itself.

When a unit fails with a database error, its transaction is rolled back and the connection
goes back to the pool. When a unit is cancelled (its deadline passed, or the caller was
cancelled), trio-asyncio cancels the asyncio coroutine and waits for it, so the coroutine must
finish at once whatever the link does: it never waits for the server then. It sends a
CancelRequest for the statement in flight on a fresh connection (in the background: on a
stalled link it may never arrive; then ``statement_timeout`` and the session limits of
``session.py`` end the work on the server) and drops the connection. The pool (:class:`Pool`)
lives on the trio side, so checking a connection out and back costs no crossing.

Driver errors are translated here into ``runlater.errors`` types, the original as ``__cause__``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import asyncpg
import trio
import trio_asyncio
from asyncpg import connect_utils

from runlater.errors import (
    Conflict,
    LimitExceeded,
    StoreError,
    StoreUnavailable,
    TransientConflict,
)
from runlater.store.session import DEFAULT_TIMEOUTS, DbTimeouts

log = logging.getLogger("runlater.store")

T = TypeVar("T")
Unit = Callable[..., Awaitable[T]]

RELEASE_TIMEOUT_S = 5.0
IDLE_CLOSE_S = 60.0
CANCEL_REQUEST_TIMEOUT_S = 5.0

# SQLSTATE classes/codes that mean "the database is not reachable right now" (or did not
# answer in time: 57014 is a statement cancelled by statement_timeout or our CancelRequest,
# 25P03 a session ended by idle_in_transaction_session_timeout).
_UNAVAILABLE_STATES = ("08", "57P01", "57P02", "57P03", "57014", "25P03", "53300", "53400")
# Unique violation; RLCON: a rule of ours that keeps the data whole (the last owner stays).
_CONFLICT_STATES = ("23505", "RLCON")
# Deadlock, serialization failure, lock_timeout / NOWAIT.
_TRANSIENT_CONFLICT_STATES = ("40001", "40P01", "55P03")
# Raised by the plan-limit triggers (migration 006), the field in COLUMN.
_LIMIT_EXCEEDED_STATE = "RLLIM"


class DeadlineExceeded(StoreUnavailable):
    """Raised by the bridge when the database did not answer a unit of work (or a connection
    attempt) within the client's deadline: the link is stalled or the server is frozen."""


# CancelRequests on their way (held so the loop does not drop the tasks half-way).
_cancel_requests: set[asyncio.Task[None]] = set()


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
    if _is_io_failure(exc):
        return StoreUnavailable(f"database unavailable: {type(exc).__name__}: {exc}")
    return exc


async def _init_connection(conn: asyncpg.Connection) -> None:
    for typename in ("json", "jsonb"):
        await conn.set_type_codec(
            typename, encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
        )


async def _aio_connect(
    dsn: str, timeouts: DbTimeouts, application_name: str, init: bool
) -> asyncpg.Connection:
    # No command_timeout: asyncpg would arm an asyncio timer per statement (see session.py).
    # No statement lifetime either: each cached statement would arm a 300 s timer holding
    # the context (the request) that prepared it; the named queries are few and fixed.
    conn = await asyncpg.connect(
        dsn,
        timeout=timeouts.connect_s,
        command_timeout=None,
        max_cached_statement_lifetime=0,
        server_settings=timeouts.server_settings(application_name),
    )
    try:
        timeouts.configure_socket(conn._transport.get_extra_info("socket"))
        if init:
            await _init_connection(conn)
    except BaseException:
        conn.terminate()
        raise
    return conn


async def _open(
    dsn: str, timeouts: DbTimeouts, application_name: str, *, init: bool = True
) -> asyncpg.Connection:
    """A new connection, within ``timeouts.connect_s`` (a trio deadline: no asyncio timer)."""
    with trio.move_on_after(timeouts.connect_s + timeouts.margin_s) as scope:
        try:
            return await trio_asyncio.aio_as_trio(_aio_connect)(
                dsn, timeouts, application_name, init
            )
        except Exception as exc:
            raise translate(exc) from exc
    assert scope.cancelled_caught
    raise DeadlineExceeded(f"database unavailable: no connection within {timeouts.connect_s:g} s")


async def _send_cancel_request(
    addr: Any, params: Any, backend_pid: int, backend_secret: int
) -> None:
    loop = asyncio.get_running_loop()
    try:
        await asyncio.wait_for(
            connect_utils._cancel(
                loop=loop,
                addr=addr,
                params=params,
                backend_pid=backend_pid,
                backend_secret=backend_secret,
            ),
            CANCEL_REQUEST_TIMEOUT_S,
        )
    except (Exception, asyncio.CancelledError) as exc:  # the session limits end it instead
        log.info("cancel request not delivered pid=%s error=%r", backend_pid, exc)


def abandon(conn: asyncpg.Connection) -> None:
    """Stop whatever ``conn`` has in flight on the server and drop it, without waiting.

    asyncpg's ``terminate()`` alone would also cancel asyncpg's own pending CancelRequest, and
    a statement the server is still running (waiting for a lock, say) would go on — and could
    commit — after the caller was told it failed. The CancelRequest goes out on a fresh
    connection from a task of its own; ``client_connection_check_interval`` and the statement
    and idle-in-transaction limits end the session if it cannot arrive."""
    if conn.is_closed():
        return
    protocol = conn._protocol
    target = (
        conn._addr,
        conn._params,
        protocol.backend_pid,
        protocol.backend_secret,
    )
    conn.terminate()
    if target[2] is None:  # never got as far as a session
        return
    task = asyncio.get_running_loop().create_task(_send_cancel_request(*target))
    _cancel_requests.add(task)
    task.add_done_callback(_cancel_requests.discard)


@contextlib.asynccontextmanager
async def transaction(conn: asyncpg.Connection) -> AsyncIterator[None]:
    """``conn.transaction()`` for units of work (a savepoint inside a request's transaction),
    except that a cancellation does no I/O: asyncpg's own context manager sends a ROLLBACK when
    cancelled, and on a stalled link that waits as long as the stall — the deadline that
    cancelled the unit would not bound it. Here the connection is dropped instead, which rolls
    the transaction back on the server."""
    tr = conn.transaction()
    await tr.start()
    try:
        yield
    except asyncio.CancelledError:
        abandon(conn)
        raise
    except BaseException:
        if not conn.is_closed():
            await tr.rollback()
        raise
    await tr.commit()


class Pool:
    """Up to ``size`` connections for units of work, checked out and back on the trio side.

    Only the unit itself crosses into asyncio. (asyncpg's own pool, driven through
    trio-asyncio, cost ~270 µs of CPU per unit of work on top of the query: its acquire and
    release run extra asyncio tasks, timeouts, a shield and an inactivity timer, and every
    one of those callbacks is a trip through trio-asyncio's event queue.)

    Connections are opened on demand (the pool exists while Postgres is down), reused most
    recently used first, and closed once idle for ``IDLE_CLOSE_S``. Waiting longer than
    ``timeouts.connect_s`` for a free one raises StoreUnavailable, as asyncpg's pool did.
    Units change no session state (no SET, no LISTEN, only transaction-scoped advisory
    locks), so a returned connection is only rolled back if a transaction was left open.
    When a unit misses its deadline the idle connections are closed too: they share the link
    that just failed to answer, and a new connection proves it works (or fails within the
    connect timeout) instead of each request finding out on a stalled one.
    """

    def __init__(
        self,
        dsn: str,
        size: int,
        timeouts: DbTimeouts = DEFAULT_TIMEOUTS,
        application_name: str = "runlater",
    ) -> None:
        self.dsn = dsn
        self.size = size
        self.timeouts = timeouts
        self.application_name = application_name
        self._slots = trio.Semaphore(size)
        self._idle: list[tuple[asyncpg.Connection, float]] = []  # (connection, idle since)
        self._open = 0
        self._closed = False

    def get_size(self) -> int:
        """Connections open (idle or in use)."""
        return self._open

    def get_idle_size(self) -> int:
        return len(self._idle)

    def in_use(self) -> int:
        """Connections checked out right now."""
        return self.size - self._slots.value

    async def checkout(self) -> asyncpg.Connection:
        try:
            self._slots.acquire_nowait()
        except trio.WouldBlock:
            with trio.move_on_after(self.timeouts.connect_s) as waited:
                await self._slots.acquire()
            if waited.cancelled_caught:
                raise StoreUnavailable(
                    f"database unavailable: no connection free within {self.timeouts.connect_s:g} s"
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
            return await _open(self.dsn, self.timeouts, self.application_name)
        except BaseException:
            self._open -= 1
            raise

    def checkin(self, conn: asyncpg.Connection) -> None:
        if conn.is_closed() or self._closed:
            self._open -= 1
            conn.terminate()
        else:
            self._idle.append((conn, trio.current_time()))
        self._slots.release()

    def discard_idle(self) -> None:
        """Drop every idle connection at once (the link they share just stalled)."""
        while self._idle:
            conn, _ = self._idle.pop()
            self._open -= 1
            conn.terminate()

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


async def open_pool(
    dsn: str,
    size: int,
    timeouts: DbTimeouts = DEFAULT_TIMEOUTS,
    application_name: str = "runlater",
) -> Pool:
    return Pool(dsn, size, timeouts, application_name)


async def close_pool(pool: Pool) -> None:
    await pool.close()


async def _tidy(conn: asyncpg.Connection) -> None:
    """What asyncpg's pool does on release, without its complaint through the loop's exception
    handler (which trio-asyncio raises into the loop): roll back a transaction the unit left
    open. No I/O unless needed. A connection that cannot be tidied is terminated."""
    if conn.is_closed():
        return
    if not conn.is_in_transaction() and conn._top_xact is None:
        return
    try:
        conn._top_xact = None
        await conn.execute("ROLLBACK")
    except Exception:
        conn.terminate()


async def _aio_run(conn: asyncpg.Connection, unit: Unit[T], args: tuple[Any, ...], tidy: bool) -> T:
    try:
        try:
            result = await unit(conn, *args)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if _is_io_failure(exc):
                # The connection failed mid-operation (I/O error, protocol state unknown):
                # tidying it might wait forever, so drop it.
                abandon(conn)
            if tidy:
                await _tidy(conn)
            mapped = translate(exc)
            if mapped is exc:
                raise
            raise mapped from exc
        if tidy:
            await _tidy(conn)
        return result
    except asyncio.CancelledError:
        # Cancelled (deadline or caller): finish now, whatever the link does.
        abandon(conn)
        raise


def _is_io_failure(exc: BaseException) -> bool:
    return isinstance(
        exc,
        asyncpg.InterfaceError
        | asyncpg.InternalClientError
        | OSError
        | TimeoutError
        | asyncio.TimeoutError,
    )


async def cross(
    conn: asyncpg.Connection,
    unit: Unit[T],
    *args: Any,
    deadline_s: float,
    tidy: bool = True,
) -> T:
    """Run ``unit(conn, *args)`` on a connection in hand, in one crossing, within
    ``deadline_s`` (DeadlineExceeded when it passes; the connection is then dropped).
    ``tidy``: roll back a transaction the unit left open (a request's transaction does not
    want that: it ends its transaction itself)."""
    with trio.move_on_after(deadline_s) as scope:
        return await trio_asyncio.aio_as_trio(_aio_run)(conn, unit, args, tidy)
    assert scope.cancelled_caught
    raise DeadlineExceeded(f"database unavailable: no answer within {deadline_s:g} s")


async def run(pool: Pool, unit: Unit[T], *args: Any, deadline_s: float | None = None) -> T:
    """Run ``unit(conn, *args)`` on a pooled connection in one crossing, within ``deadline_s``
    (default: the pool's ``unit_deadline_s``)."""
    conn = await pool.checkout()
    try:
        return await cross(
            conn, unit, *args, deadline_s=deadline_s or pool.timeouts.unit_deadline_s
        )
    except DeadlineExceeded:
        pool.discard_idle()
        raise
    finally:
        pool.checkin(conn)


async def connect(
    dsn: str, timeouts: DbTimeouts = DEFAULT_TIMEOUTS, application_name: str = "runlater"
) -> asyncpg.Connection:
    """A dedicated connection (LISTEN needs one that the pool never resets), with the same
    session limits as the pool's."""
    return await _open(dsn, timeouts, application_name, init=False)


async def call(
    fn: Callable[..., Awaitable[T]], *args: Any, deadline_s: float | None = None, **kwargs: Any
) -> T:
    """Await an asyncio-side coroutine function (e.g. a method of a dedicated connection),
    within ``deadline_s`` when given (StoreUnavailable when it passes)."""

    async def unit(_conn: None) -> T:
        return await fn(*args, **kwargs)

    with trio.move_on_after(deadline_s if deadline_s is not None else float("inf")) as scope:
        try:
            return await trio_asyncio.aio_as_trio(unit)(None)
        except Exception as exc:
            mapped = translate(exc)
            if mapped is exc:
                raise
            raise mapped from exc
    assert scope.cancelled_caught
    raise DeadlineExceeded(f"database unavailable: no answer within {deadline_s:g} s")


def _log_unhandled(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    exc = context.get("exception")
    log.warning(
        "asyncio: %s error=%s: %s",
        context.get("message", "unhandled error"),
        type(exc).__name__ if exc is not None else "-",
        exc,
    )


@contextlib.asynccontextmanager
async def open_loop() -> AsyncIterator[asyncio.AbstractEventLoop]:
    """The asyncio loop (trio-asyncio) the driver runs on, for a node or a command.

    trio-asyncio raises every error asyncio reports as unhandled into its own nursery, which
    ends the loop and with it the node. asyncpg reports some after a connection is lost under an
    operation we already gave up on ("Future exception was never retrieved:
    ConnectionError('unexpected connection_lost() call')", seen during a network black hole):
    that operation's caller already got StoreUnavailable, so here such reports are logged.
    """
    async with trio_asyncio.open_loop() as loop:
        loop.set_exception_handler(_log_unhandled)
        yield loop
