"""Scheduler: turns due cron tasks into ``pending`` executions and advances ``next_run_at``.

Mailbox: ``Wake`` (a cron task was created or changed — NOTIFY ``runlater_tasks``); otherwise
ticks every second (``run_periodic``). Emits: executions (and a NOTIFY on
``runlater_executions``, in the same statement). Leader-only: it runs in the Elector's
sub-supervisor. Firing is idempotent in the database — a compare-and-set on ``next_run_at``
plus the unique ``(task_id, scheduled_for)`` index, in one statement — so two schedulers (a
leader change, a restart inside a repeated DST hour) never create a run twice. A crash loses
nothing: due tasks stay due until their ``next_run_at`` moves.

Misfire (cron only): after downtime only the latest missed slot within ``misfire_grace_s``
runs; each older slot gets one ``missed`` row (at most 100). One-time tasks are not scheduled
here: they get their execution when they are created.

Locks: a task row that another transaction holds (an API request changing it, perhaps on a
node that was partitioned in the middle of it) is skipped, not waited for, and tried again in
the next pass (at most ``TICK_S`` later): one session never stalls the cron of every
organization. When a batch still meets a lock (an organization's usage counter, held by a
request in flight that created work for it), it is split: one statement per organization, and
only the organization whose row is held waits for the next pass.

Plan limits: a slot of an organization past its plan's hard monthly limit is not run. The
database records it as ``cancelled`` ("monthly execution limit reached ...") in the same
statement (migration 006's usage trigger), so the batch goes on, ``next_run_at`` moves as usual
and other organizations' slots are unaffected. ``created`` counts the runs the statement
inserted as pending, such slots included.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any
from uuid import UUID

import trio

from runlater.actors.loop import run_periodic
from runlater.actors.messages import Wake
from runlater.clock import Clock
from runlater.cron import CronSchedule
from runlater.errors import InvalidCron, TransientConflict
from runlater.store.ports import ScheduleStore
from runlater.store.records import AdvanceResult, CronAdvance, DueCronTask

log = logging.getLogger("runlater.actors.scheduler")

BATCH = 1000
MAX_MISSED_ROWS = 100
TICK_S = 1.0


@dataclass(frozen=True, slots=True)
class SchedulerResult:
    advanced: int
    created: int
    missed: int
    skipped: int = 0  # due tasks left for the next pass: their rows were locked


@lru_cache(maxsize=4096)
def _schedule(expression: str, timezone: str) -> CronSchedule:
    return CronSchedule(expression, timezone)


def plan_advance(task: DueCronTask, now: datetime, grace_s: float) -> CronAdvance:
    """Which runs of a due task to create at ``now``, and its next run after ``now``."""
    schedule = _schedule(task.cron_expression, task.timezone)
    # Only the slots that can matter: the newest MAX_MISSED_ROWS + 1 at most.
    horizon = now - timedelta(minutes=task.interval_minutes * (MAX_MISSED_ROWS + 1))
    if task.next_run_at > horizon:
        slots = [task.next_run_at, *schedule.runs_between(task.next_run_at, now)]
    else:
        slots = schedule.runs_between(horizon, now)
    slots = [s for s in slots if s <= now]
    fire = slots.pop() if slots and (now - slots[-1]).total_seconds() <= grace_s else None
    # At most MAX_MISSED_ROWS missed rows, whether or not the latest slot runs.
    runs: list[tuple[datetime, str]] = [(s, "missed") for s in slots[-MAX_MISSED_ROWS:]]
    if fire is not None:
        runs.append((fire, "pending"))
    return CronAdvance(task.id, task.next_run_at, schedule.next_after(now), tuple(runs))


class Scheduler:
    def __init__(
        self,
        store: ScheduleStore,
        clock: Clock,
        *,
        misfire_grace_s: float,
        mailbox: trio.MemoryReceiveChannel[Wake] | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.misfire_grace_s = misfire_grace_s
        self.mailbox = mailbox
        self.skipped: set[UUID] = set()  # due, but locked in the last pass

    async def run_once(self) -> SchedulerResult:
        now = self.clock.now()
        advanced = created = missed = 0
        skipped: set[UUID] = set()
        while True:
            due = await self.store.due_cron_tasks(now, BATCH)
            advances = []
            for task in due:
                try:
                    advances.append(plan_advance(task, now, self.misfire_grace_s))
                except InvalidCron as exc:  # validated at the API; a stored one went bad
                    log.error("actor=scheduler task=%s unschedulable cron error=%s", task.id, exc)
            for result in await self._advance(due, advances):
                advanced += result.advanced
                created += result.created
                missed += result.missed
                skipped.update(result.skipped)
            # A full batch may have more behind it — unless all that is left was skipped.
            if len(due) < BATCH or len(skipped) >= len(due):
                break
        self.skipped = skipped
        if created or missed:
            log.info("actor=scheduler created=%d missed=%d", created, missed)
        if skipped:
            log.warning("actor=scheduler skipped locked tasks count=%d", len(skipped))
        return SchedulerResult(advanced, created, missed, len(skipped))

    async def _advance(
        self, due: list[DueCronTask], advances: list[CronAdvance]
    ) -> list[AdvanceResult]:
        """One statement for the batch; when it meets a lock, one per organization."""
        try:
            return [await self.store.advance_cron(advances)]
        except TransientConflict as exc:
            log.warning(
                "actor=scheduler batch met a lock, advancing per organization error=%s", exc
            )
        org_of = {task.id: task.organization_id for task in due}
        by_org: dict[UUID, list[CronAdvance]] = {}
        for adv in advances:
            by_org.setdefault(org_of[adv.task_id], []).append(adv)
        results = []
        for org, group in by_org.items():
            try:
                results.append(await self.store.advance_cron(group))
            except TransientConflict as exc:
                log.warning("actor=scheduler organization=%s waits for a lock error=%s", org, exc)
                results.append(AdvanceResult(0, 0, 0, tuple(a.task_id for a in group)))
        return results

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        await run_periodic("scheduler", self._pass, mailbox=self.mailbox)

    async def _pass(self) -> float:
        """One pass, then sleep exactly until the next slot (at most a tick), so cron runs
        start on time."""
        await self.run_once()
        next_due = await self.store.next_cron_due(self.skipped)
        if next_due is None:
            return TICK_S
        return min(TICK_S, max(0.0, (next_due - self.clock.now()).total_seconds()))
