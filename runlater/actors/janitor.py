"""Janitor: deletes what no one may ask for any more — execution history past its plan's
retention, idempotency keys older than 24 h, per-host backoff rows of hosts not called
for a day (``STALE_BACKOFF_S``; a success deletes a host's row, a host never called again
would keep it for ever), finished mails of the e-mail log older than ``MAIL_DAYS``, and
heartbeat monitors' pings and inbound endpoints' events (with their forwards, once all have
finished) past their plan's retention.

Mailbox: none (ticks every ``janitor_interval_s``). Emits nothing. Leader-only: it runs in the
Elector's sub-supervisor, so one node does the deleting. Each statement deletes a bounded batch
(short transactions, no long locks), a pass stops after ``MAX_BATCHES`` of each kind and the
next tick goes on. Only finished executions are deleted (never pending or running ones, nor
one whose callback is still being sent): the retention clock starts when a run finishes. A
crash loses nothing: whatever it did not delete is still there at the next tick.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import trio

from runlater.actors.loop import at_interval, run_periodic
from runlater.clock import Clock
from runlater.store.ports import RetentionStore

log = logging.getLogger("runlater.actors.janitor")

BATCH = 1000
MAX_BATCHES = 100  # per kind and pass: at most 100,000 rows, then the next tick
STALE_BACKOFF_S = 86_400.0
MAIL_DAYS = 30  # the e-mail log (docs/operations.md)


class JanitorStore(RetentionStore, Protocol):
    """The janitor's calls: retention, and the e-mail log's (``ports.MailStore``)."""

    async def purge_mails(self, older_than_days: int = 30, limit: int = 10_000) -> int: ...


@dataclass(frozen=True, slots=True)
class JanitorResult:
    executions_deleted: int
    idempotency_keys_deleted: int
    host_backoffs_deleted: int = 0
    mails_deleted: int = 0
    sign_ins_deleted: int = 0  # sessions and sign-in links expired for a day
    minutes_deleted: int = 0  # the home page's per-minute aggregate past 8 days
    monitor_pings_deleted: int = 0  # heartbeat pings and uptime results past retention
    inbound_events_deleted: int = 0  # inbound events (and their forwards) past retention


class Janitor:
    def __init__(self, store: JanitorStore, clock: Clock, *, interval_s: float) -> None:
        self.store = store
        self.clock = clock
        self.interval_s = interval_s

    async def run_once(self, now: datetime | None = None) -> JanitorResult:
        """One pass: retention measured back from ``now`` (default: the clock's now)."""
        now = self.clock.now() if now is None else now
        executions = await self._drain(lambda: self.store.delete_expired_executions(now, BATCH))
        keys = await self._drain(lambda: self.store.purge_idempotency_keys(BATCH))
        backoffs = await self._drain(
            lambda: self.store.delete_stale_host_backoffs(STALE_BACKOFF_S, BATCH)
        )
        mails = await self._drain(lambda: self.store.purge_mails(MAIL_DAYS, BATCH))
        sign_ins = await self.store.delete_expired_sign_ins()
        minutes = await self._drain(lambda: self.store.delete_old_execution_minutes(BATCH))
        pings = await self._drain(lambda: self.store.delete_old_monitor_pings(now, BATCH))
        pings += await self._drain(lambda: self.store.delete_old_uptime_results(now, BATCH))
        await self._drain(lambda: self.store.delete_old_uptime_days(now, BATCH))
        await self._drain(lambda: self.store.delete_old_resource_days(now, BATCH))
        inbound = await self._drain(lambda: self.store.delete_old_inbound_events(now, BATCH))
        if executions or keys or backoffs or mails or sign_ins or minutes or pings or inbound:
            log.info(
                "actor=janitor deleted executions=%d idempotency_keys=%d host_backoffs=%d "
                "mails=%d sign_ins=%d execution_minutes=%d monitor_pings=%d inbound_events=%d",
                executions,
                keys,
                backoffs,
                mails,
                sign_ins,
                minutes,
                pings,
                inbound,
            )
        return JanitorResult(executions, keys, backoffs, mails, sign_ins, minutes, pings, inbound)

    async def _drain(self, delete_batch: Callable[[], Awaitable[int]]) -> int:
        total = 0
        for _ in range(MAX_BATCHES):
            deleted = await delete_batch()
            total += deleted
            if deleted < BATCH:
                break
        return total

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        await run_periodic("janitor", at_interval(self.run_once, self.interval_s))
