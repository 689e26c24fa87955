"""Listener: one dedicated connection LISTENing; NOTIFYs become ``Wake`` hints in trio channels.

Mailbox: none. Emits: ``Wake`` to the mailboxes routed for each Postgres channel
(``runlater_executions`` → PoolManager, ``runlater_tasks`` → Scheduler). A pooled connection
would be reset (UNLISTEN *) on release, so this one is its own. When the connection drops it
reconnects with backoff and then wakes everyone (notifications sent meanwhile are lost; the
hint makes the receivers look at the database instead). A link that stalls without closing
(no FIN, no RST) is found by a ``select 1`` every ``HEALTH_CHECK_S`` that must answer within
the store's deadline. Runs on every node. A crash costs latency only: receivers poll.
"""

from __future__ import annotations

import logging
from typing import Any

import trio

from runlater.actors.backoff import Backoff
from runlater.actors.messages import Notice, NoticeBox, Wake, hint
from runlater.errors import StoreUnavailable
from runlater.store import bridge
from runlater.store.session import DEFAULT_TIMEOUTS, DbTimeouts

log = logging.getLogger("runlater.actors.listener")

HEALTH_CHECK_S = 10.0


async def _ping(conn: Any) -> None:
    await conn.fetchval("select 1")


class Listener:
    def __init__(
        self,
        dsn: str,
        routes: dict[str, list[trio.MemorySendChannel[Wake]]],
        *,
        notices: dict[str, NoticeBox] | None = None,
        timeouts: DbTimeouts = DEFAULT_TIMEOUTS,
        application_name: str = "runlater listener",
    ) -> None:
        self.dsn = dsn
        self.routes = routes
        self.notices = notices or {}
        self.timeouts = timeouts
        self.application_name = application_name
        self.connected = trio.Event()
        self.reconnects = 0
        self.listened = False  # set once a connection was LISTENing

    def _wake_all(self, reason: str) -> None:
        for channels in self.routes.values():
            for channel in channels:
                hint(channel, Wake(reason))
        for box in self.notices.values():
            box.put(Notice(None))  # what was sent while not listening is lost

    def _on_notify(self, _conn: Any, _pid: int, channel: str, payload: str) -> None:
        # Called on the asyncio side, which trio-asyncio runs inside this trio thread.
        for target in self.routes.get(channel, ()):
            hint(target, Wake(f"notify {channel} {payload}".rstrip()))
        box = self.notices.get(channel)
        if box is not None:
            box.put(Notice(payload))

    async def run_once(self) -> None:
        """Connect, listen until the connection is lost; raises StoreUnavailable then."""
        conn = await bridge.connect(self.dsn, self.timeouts, self.application_name)
        lost = trio.Event()
        try:
            conn.add_termination_listener(lambda _c: lost.set())
            for channel in {*self.routes, *self.notices}:
                await bridge.call(
                    conn.add_listener,
                    channel,
                    self._on_notify,
                    deadline_s=self.timeouts.unit_deadline_s,
                )
            self.connected.set()
            self.listened = True
            self._wake_all("listener connected")
            while not lost.is_set():
                with trio.move_on_after(HEALTH_CHECK_S):
                    await lost.wait()
                if not lost.is_set():  # a dead or stalled link: no answer in time
                    await bridge.cross(conn, _ping, deadline_s=self.timeouts.unit_deadline_s)
            raise StoreUnavailable("listener connection lost")
        finally:
            self.connected = trio.Event()
            with trio.CancelScope(shield=True):
                if not conn.is_closed():
                    try:
                        await bridge.call(conn.close, timeout=2, deadline_s=3)
                    except StoreUnavailable:
                        conn.terminate()

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        backoff = Backoff(initial_s=0.1, max_s=5.0)
        while True:
            try:
                await self.run_once()
            except StoreUnavailable as exc:
                if self.listened:  # it was up: start the backoff afresh
                    backoff.reset()
                    self.listened = False
                delay = backoff.next_delay_s()
                self.reconnects += 1
                log.warning("actor=listener disconnected retry_in_s=%.2f error=%s", delay, exc)
                await trio.sleep(delay)
