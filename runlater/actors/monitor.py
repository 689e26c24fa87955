"""Monitor: marks heartbeat monitors down when their ping is late or a started run did not
finish in time, and keeps cron monitors' upcoming instants topped up.

Mailbox: none. Leader-only (the Elector's sub-supervisor), so one node marks. A tick is one
statement over ``monitors_down_at_idx`` whatever the number of monitors
(``mark_overdue_monitors``); it waits until the earliest deadline (at most ``interval_s``).
Pings never wait on it: a row a ping holds is skipped and looked at again next tick, and a
ping that comes after the mark sees the monitor down (a recovery). A crash loses nothing:
the deadlines are in the rows.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import trio

from runlater.actors.loop import run_periodic
from runlater.clock import Clock
from runlater.cron import CronSchedule
from runlater.domain.monitors import upcoming_columns
from runlater.errors import InvalidCron
from runlater.store.monitors import CronRefresh
from runlater.store.ports import MonitorTickStore

log = logging.getLogger("runlater.actors.monitor")

BATCH = 1000  # monitors marked per statement; a full batch means: go again at once
REFRESH_BATCH = 200
MIN_WAIT_S = 0.05


@dataclass(frozen=True, slots=True)
class MonitorTick:
    marked: list[UUID]  # monitors marked down by this tick
    refreshed: int  # cron monitors given new upcoming instants
    more: bool  # a batch was full: the next tick follows at once


class Monitor:
    def __init__(self, store: MonitorTickStore, clock: Clock, *, interval_s: float) -> None:
        self.store = store
        self.clock = clock
        self.interval_s = interval_s

    async def run_once(self, now: datetime | None = None) -> MonitorTick:
        """One tick at ``now`` (default: the clock's now)."""
        now = self.clock.now() if now is None else now
        marked = await self.store.mark_overdue_monitors(now, BATCH)
        for row in marked:
            log.info(
                "actor=monitor monitor down monitor_id=%s organization_id=%s reason=%s",
                row["id"],
                row["organization_id"],
                "run not finished" if row["started_at"] is not None else "ping late",
            )
        refreshed = await self._refresh(now)
        more = len(marked) == BATCH or refreshed == REFRESH_BATCH
        return MonitorTick([row["id"] for row in marked], refreshed, more)

    async def _refresh(self, now: datetime) -> int:
        rows = await self.store.cron_monitors_to_refresh(now, REFRESH_BATCH)
        refreshes = []
        for row in rows:
            try:
                schedule = CronSchedule(row["cron_expression"], row["timezone"])
                columns = upcoming_columns(schedule, now)
            except (InvalidCron, ValueError) as exc:
                # Stored expressions were valid when written; a zone database change could
                # still break one. It is logged and skipped, not allowed to stop the Monitor.
                log.error("actor=monitor cron monitor %s not refreshed error=%s", row["id"], exc)
                continue
            refreshes.append(
                CronRefresh(
                    row["id"],
                    row["cron_expression"],
                    row["timezone"],
                    [datetime.fromisoformat(t) for t in columns["cron_upcoming"]],
                    datetime.fromisoformat(columns["cron_refresh_at"]),
                )
            )
        await self.store.refresh_cron_upcoming(refreshes)
        return len(refreshes)

    async def _one_pass(self) -> float:
        tick = await self.run_once()
        if tick.more:
            return 0.0
        deadline = await self.store.next_monitor_deadline()
        if deadline is None:
            return self.interval_s
        wait_s = (deadline - self.clock.now()).total_seconds()
        return min(self.interval_s, max(MIN_WAIT_S, wait_s))

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        await run_periodic("monitor", self._one_pass)
