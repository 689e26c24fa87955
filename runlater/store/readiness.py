"""Readiness: does the database answer, within a deadline, on a connection of its own?

``GET /health/ready`` must answer within a second whatever the database link does, so the
probe never queues behind API traffic for a pooled connection: it keeps one dedicated
connection (kept while it works, dropped when a probe fails and opened again by the next one)
and runs ``select 1`` on it under the caller's deadline. Concurrent callers share the probe in
flight instead of starting their own. The last result is kept for ``/health`` (liveness),
which reports it without waiting.
"""

from __future__ import annotations

import dataclasses
import logging

import asyncpg
import trio

from runlater.errors import StoreError
from runlater.store import bridge
from runlater.store.session import DbTimeouts

log = logging.getLogger("runlater.store.readiness")


async def _select_one(conn: asyncpg.Connection) -> None:
    await conn.fetchval("select 1")


class ReadinessProbe:
    def __init__(self, dsn: str, timeouts: DbTimeouts, application_name: str) -> None:
        self.dsn = dsn
        self.timeouts = timeouts
        self.application_name = application_name
        self.last_ok: bool | None = None  # None: never probed
        self._conn: asyncpg.Connection | None = None
        self._in_flight: trio.Event | None = None

    async def check(self, deadline_s: float) -> bool:
        """True when the database answered within ``deadline_s`` (never waits longer)."""
        with trio.move_on_after(deadline_s):
            if self._in_flight is not None:  # another caller's probe: share its answer
                await self._in_flight.wait()
                return bool(self.last_ok)
            self._in_flight = trio.Event()
            try:
                self.last_ok = await self._probe(deadline_s)
                return self.last_ok
            finally:
                self._in_flight.set()
                self._in_flight = None
        self.last_ok = False
        return False

    async def _probe(self, deadline_s: float) -> bool:
        try:
            if self._conn is None or self._conn.is_closed():
                self._conn = None
                quick = dataclasses.replace(self.timeouts, connect_s=deadline_s, margin_s=0)
                self._conn = await bridge.connect(self.dsn, quick, self.application_name)
            await bridge.cross(self._conn, _select_one, deadline_s=deadline_s)
            return True
        except StoreError as exc:
            log.warning("database not ready error=%s", exc)
            self._drop()
            return False
        except trio.Cancelled:
            self._drop()  # cut off mid-probe: its state is unknown
            raise

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.terminate()
            self._conn = None

    def close(self) -> None:
        self._drop()
