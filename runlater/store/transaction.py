"""One API request, one transaction: its changes, its audit entry and its Idempotency-Key record
commit together, or none of them do.

A mutating API request gets a :class:`RequestTransaction` (the web layer makes it and sets it
as the current one, ``current``); every store call made while it is current runs on its
connection inside its transaction (``StoreBase._run``). It begins lazily, with the request's
first database call, so a request refused before it touches the database costs no
transaction. The web layer ends it with :meth:`RequestTransaction.commit` (the response is a
success: the entries the request leaves are written and committed) or
:meth:`RequestTransaction.rollback`.

Why one transaction: with separate writes, an outage between them left a created task whose
Idempotency-Key stayed "in progress" (the client got 409 for a day and never its answer) or
whose audit entry was lost. Now a request's effects and records are atomic, and the only
record of a key that is "in progress" is a transaction-scoped advisory lock, which Postgres
releases when the transaction ends for any reason — a node that vanishes mid-request frees
its keys within ``idle_in_transaction_session_timeout`` (or ``statement_timeout``).

Idempotency-Key: the first database call (or the commit, for a request that made none) takes
``pg_try_advisory_xact_lock`` of (organization, key) and reads the key's record. Held by
another transaction → :class:`KeyInProgress` (409); a record for another request →
:class:`KeyMismatch` (422); a record of the same request → :class:`KeyReplay` with the stored
answer; none → the request runs, under a savepoint, so that an error answer (which is kept
too) is stored without any half-done change.

A COMMIT is sent only while at least ``idle_in_transaction + margin`` of the deadline remains,
and the client waits for its answer until the deadline: an answer of "unavailable" therefore
never takes effect later (if the COMMIT had not arrived by then, the server has ended the
session). Whether a commit whose answer was lost took effect is knowable: the request's
Idempotency-Key record commits with it, and a retry gets the original answer.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass
from typing import Any, TypeVar
from uuid import UUID

import asyncpg
import trio

from runlater.errors import RunlaterError, StoreUnavailable
from runlater.store import bridge
from runlater.store.queries import Q
from runlater.store.records import Row

T = TypeVar("T")

# Keys of the advisory locks that stand for Idempotency-Keys in progress (second argument of
# hashtextextended: keeps them apart from other advisory locks of the application). QStash
# deduplication ids (store/qstash.py) live in the same table and take the same locks.
KEY_LOCK_SEED = 7_141_002


class KeyInProgress(RunlaterError):
    """Raised by a request transaction when another request holds the same Idempotency-Key."""


class KeyMismatch(RunlaterError):
    """Raised by a request transaction when the Idempotency-Key's record is of another request
    (method, path, query or body differ)."""


class KeyReplay(RunlaterError):
    """Raised by a request transaction when the Idempotency-Key already has an answer: the
    request must not run again; ``record`` holds the stored status, body and headers."""

    def __init__(self, record: Row) -> None:
        super().__init__("this Idempotency-Key already has an answer")
        self.record = record


@dataclass(frozen=True, slots=True)
class IdempotencyKey:
    """The Idempotency-Key a request came with, and what identifies the request."""

    organization_id: UUID
    key: str
    method: str
    path: str
    request_hash: str


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One audit-log row (``audit_log``), as the API records it."""

    organization_id: UUID
    actor_type: str
    actor_id: UUID | None
    action: str
    resource_id: str | None
    status_code: int
    ip: str | None


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    """The answer to keep for an Idempotency-Key (``idempotency_keys``)."""

    status: int
    body: bytes
    headers: dict[str, str]


current: contextvars.ContextVar[RequestTransaction | None] = contextvars.ContextVar(
    "runlater_request_transaction", default=None
)


class _Open:
    """The asyncio-side state of a begun transaction."""

    __slots__ = ("savepoint", "top")

    def __init__(self, top: Any, savepoint: Any) -> None:
        self.top = top
        self.savepoint = savepoint


async def _begin(conn: asyncpg.Connection, tx: RequestTransaction) -> _Open:
    """BEGIN, and take the request's Idempotency-Key: rolled back again unless it may run."""
    top = conn.transaction()
    await top.start()
    key = tx.key
    if key is None:
        return _Open(top, None)
    found = await conn.fetchrow(Q.lock_idempotency_key, key.organization_id, key.key, KEY_LOCK_SEED)
    if not found["locked"]:
        await top.rollback()
        raise KeyInProgress("a request with this Idempotency-Key is still in progress")
    if found["request_hash"] is not None:
        await top.rollback()
        if found["request_hash"] != key.request_hash:
            raise KeyMismatch("this Idempotency-Key was used with a different request")
        raise KeyReplay(dict(found))
    savepoint = conn.transaction()
    await savepoint.start()
    return _Open(top, savepoint)


async def _run_in(
    conn: asyncpg.Connection, tx: RequestTransaction, unit: bridge.Unit[T], args: tuple[Any, ...]
) -> T:
    if tx._state is None:
        tx._state = await _begin(conn, tx)
    return await unit(conn, *args)


async def _finish(
    conn: asyncpg.Connection,
    tx: RequestTransaction,
    keep_changes: bool,
    answer: StoredAnswer | None,
    audit: AuditRecord | None,
    commit_by: float,
) -> None:
    if tx._state is None:
        tx._state = await _begin(conn, tx)
    state, key = tx._state, tx.key
    if not keep_changes and state.savepoint is None:  # nothing to keep at all
        await state.top.rollback()
        return
    try:
        if not keep_changes:
            await state.savepoint.rollback()
        if key is not None and answer is not None:
            await conn.execute(
                Q.store_idempotency_answer,
                key.organization_id,
                key.key,
                key.method,
                key.path,
                key.request_hash,
                answer.status,
                answer.body,
                answer.headers,
            )
        if keep_changes and audit is not None:
            await conn.execute(
                Q.insert_audit_entries,
                [audit.organization_id],
                [audit.actor_type],
                [audit.actor_id],
                [audit.action],
                [audit.resource_id],
                [audit.status_code],
                [audit.ip],
            )
    except asyncpg.PostgresError:
        await state.top.rollback()
        raise
    if trio.current_time() > commit_by:
        # Too late to be sure the COMMIT arrives before the server would end the session:
        # do not send it (the transaction rolls back), so "unavailable" means "not done".
        await state.top.rollback()
        raise StoreUnavailable("database unavailable: too slow to commit within the deadline")
    await state.top.commit()


async def _rollback(conn: asyncpg.Connection, tx: RequestTransaction) -> None:
    if tx._state is not None:
        await tx._state.top.rollback()


class RequestTransaction:
    """The transaction of one API request (see the module docstring). Not reusable."""

    def __init__(self, pool: bridge.Pool, key: IdempotencyKey | None = None) -> None:
        self.pool = pool
        self.key = key
        self._conn: asyncpg.Connection | None = None
        self._state: _Open | None = None
        self._lock = trio.Lock()
        self.ended = False

    @property
    def begun(self) -> bool:
        return self._state is not None

    async def run(self, unit: bridge.Unit[T], *args: Any) -> T:
        """Run a unit of work inside the transaction (beginning it, and taking the key, first)."""
        async with self._lock:
            if self.ended:
                raise RuntimeError("the request's transaction has ended")
            conn = await self._connection()
            try:
                result = await bridge.cross(
                    conn,
                    _run_in,
                    self,
                    unit,
                    args,
                    deadline_s=self.pool.timeouts.unit_deadline_s,
                    tidy=False,
                )
            except (KeyInProgress, KeyMismatch, KeyReplay):
                self._end()  # _begin rolled back: nothing of this request may run
                raise
            except StoreUnavailable:
                if conn.is_closed():
                    self._end()
                raise
            return result

    async def commit(
        self,
        *,
        keep_changes: bool,
        answer: StoredAnswer | None = None,
        audit: AuditRecord | None = None,
    ) -> None:
        """End the transaction: keep its changes (and write ``audit``) or undo them, store
        ``answer`` for the Idempotency-Key (if the request has one), commit. Raises
        StoreUnavailable when the commit did not go through in time (nothing took effect,
        or — when only the answer to the COMMIT was lost — the key's record tells)."""
        async with self._lock:
            if self.ended:
                raise RuntimeError("the request's transaction has ended")
            needed = self._state is not None or (self.key is not None and answer is not None)
            needed = needed or (keep_changes and audit is not None)
            if not needed:
                self._end()
                return
            timeouts = self.pool.timeouts
            deadline_s = timeouts.unit_deadline_s
            commit_by = trio.current_time() + deadline_s
            try:
                conn = await self._connection()
                await bridge.cross(
                    conn,
                    _finish,
                    self,
                    keep_changes,
                    answer,
                    audit,
                    commit_by,
                    # The COMMIT may leave up to ``deadline_s`` after the start; its answer is
                    # awaited at least idle_in_transaction + margin after that.
                    deadline_s=2 * deadline_s,
                    tidy=False,
                )
            finally:
                self._end()

    async def rollback(self) -> None:
        """Undo whatever the request did (also its claim of the Idempotency-Key)."""
        with trio.CancelScope(shield=True):
            async with self._lock:
                if self.ended:
                    return
                try:
                    if self._state is not None and self._conn is not None:
                        await bridge.cross(
                            self._conn,
                            _rollback,
                            self,
                            deadline_s=self.pool.timeouts.unit_deadline_s,
                            tidy=False,
                        )
                except StoreUnavailable:
                    pass  # the connection is dropped: the server rolls back
                finally:
                    self._end()

    async def _connection(self) -> asyncpg.Connection:
        if self._conn is None:
            self._conn = await self.pool.checkout()
        return self._conn

    def _end(self) -> None:
        self.ended = True
        self._state = None
        if self._conn is not None:
            conn, self._conn = self._conn, None
            if not conn.is_closed() and conn.is_in_transaction():
                conn.terminate()  # never hand a connection with an open transaction back
            self.pool.checkin(conn)
