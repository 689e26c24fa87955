"""UptimeChecker: calls each HTTP uptime check's URL on its interval and records the answer.

Mailbox: none. Leader-only (the Elector's sub-supervisor), so each check runs once per
interval in the cluster. Due checks are claimed by moving them to their next instant
(``SKIP LOCKED``; spread over the interval by their phase, see ``domain/uptime.py``), run
concurrently (at most ``concurrency``) through the same SSRF-guarded transport as deliveries,
and each result is recorded in one statement with the check's state, the day's aggregate and
the notification event. A leader that dies mid-check loses that one check; the next runs at
its next instant.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import trio

from runlater import __version__
from runlater.actors.loop import run_periodic
from runlater.clock import Clock
from runlater.delivery.client import Attempt, Sender
from runlater.domain.uptime import failure_of
from runlater.store.ports import UptimeTickStore
from runlater.store.records import Row
from runlater.store.uptime import UptimeResult

log = logging.getLogger("runlater.actors.uptime_checker")

CONCURRENCY = 50
MIN_WAIT_S = 0.05


@dataclass(frozen=True, slots=True)
class UptimeTick:
    results: list[UptimeResult]


class UptimeChecker:
    def __init__(
        self,
        store: UptimeTickStore,
        sender: Sender,
        clock: Clock,
        *,
        interval_s: float = 1.0,
        concurrency: int = CONCURRENCY,
    ) -> None:
        self.store = store
        self.sender = sender
        self.clock = clock
        self.interval_s = interval_s
        self.concurrency = concurrency

    async def run_once(self, now: datetime | None = None) -> UptimeTick:
        """Run every check due at ``now`` (default: the clock's now), up to ``concurrency``."""
        now = self.clock.now() if now is None else now
        due = await self.store.claim_due_uptime_checks(now, self.concurrency)
        results: list[UptimeResult] = []

        async def one(check: Row) -> None:
            result = await self._check(check, now)
            await self.store.record_uptime_result(result)
            results.append(result)

        async with trio.open_nursery() as nursery:
            for check in due:
                nursery.start_soon(one, check)
        return UptimeTick(results)

    async def _check(self, check: Row, at: datetime) -> UptimeResult:
        attempt = Attempt()
        attempt.request_headers = {"User-Agent": f"Runlater-Uptime/{__version__}"}
        await self.sender.send(attempt, check["method"], check["url"], None, check["timeout_ms"])
        if attempt.status == "responded" and attempt.status_code is not None:
            why = failure_of(
                attempt.status_code,
                attempt.response_body or "",
                check["expected_status_codes"],
                check["keyword"],
            )
        else:
            why = attempt.error or attempt.status
        return UptimeResult(
            check["id"], at, why is None, attempt.status_code, attempt.duration_ms, why
        )

    async def _one_pass(self) -> float:
        tick = await self.run_once()
        if len(tick.results) == self.concurrency:
            return 0.0
        due = await self.store.next_uptime_check_at()
        if due is None:
            return self.interval_s
        wait_s = (due - self.clock.now()).total_seconds()
        return min(self.interval_s, max(MIN_WAIT_S, wait_s))

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        await run_periodic("uptime_checker", self._one_pass)
