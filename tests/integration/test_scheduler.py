"""Scheduler against real Postgres, driven by ``run_once()`` and a ManualClock.

Each test states the invariant it guards. Time never passes by itself here: the clock is moved
minute by minute (or slot by slot) and ``run_once()`` is called after each move, which is what
the actor's tick loop does in production.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import trio
import trio_asyncio

from runlater.actors.scheduler import Scheduler, SchedulerResult
from runlater.clock import ManualClock
from runlater.cron import CronSchedule
from runlater.store.postgres import Store
from runlater.store.records import DueCronTask
from tests.helpers.db import raw_connection
from tests.helpers.factories import cron_task, make_org

URL = "http://127.0.0.1:9/cron"
NY = "America/New_York"
GRACE_S = 300
MINUTE = timedelta(minutes=1)


# ------------------------------------------------------------------------------ helpers


async def add_cron(
    store: Store,
    org: UUID,
    expression: str,
    *,
    after: datetime,
    timezone: str = "UTC",
    next_run_at: datetime | None = None,
    enabled: bool = True,
) -> UUID:
    """A cron task whose ``next_run_at`` is its first slot after ``after`` (or the one given)."""
    schedule = CronSchedule(expression, timezone)
    first = next_run_at if next_run_at is not None else schedule.next_after(after)
    row = await store.insert_task(
        org,
        cron_task(
            URL,
            expression,
            first.isoformat(),
            interval_minutes=schedule.interval_minutes(after),
            timezone=timezone,
            enabled=enabled,
        ),
        None,
    )
    return row["id"]


async def executions(store: Store, org: UUID, task_id: UUID) -> list[dict[str, Any]]:
    """All executions of a task, oldest slot first."""
    rows = await store.list_task_executions(org, task_id, status=None, limit=10_000, offset=0)
    return sorted(rows, key=lambda r: r["scheduled_for"])


async def execution_count(dsn: str, task_id: UUID) -> int:
    """Executions of a task straight from the table (a deleted task's too)."""
    async with raw_connection(dsn) as conn:
        return await trio_asyncio.aio_as_trio(conn.fetchval)(
            "select count(*) from executions where task_id = $1", task_id
        )


def local_day(year: int, month: int, day: int, timezone: str) -> tuple[datetime, datetime]:
    """[start, end) of a local calendar day, as UTC instants (23, 24 or 25 hours long)."""
    tz = ZoneInfo(timezone)
    start = datetime(year, month, day, tzinfo=tz)
    end = datetime.combine(start.date() + timedelta(days=1), datetime.min.time(), tzinfo=tz)
    return start.astimezone(UTC), end.astimezone(UTC)


async def step(
    scheduler: Scheduler, clock: ManualClock, start: datetime, end: datetime, every: timedelta
) -> SchedulerResult:
    """Move the clock from ``start`` to ``end`` (exclusive) and tick at each step."""
    advanced = created = missed = 0
    t = start
    while t < end:
        clock.set(t)
        result = await scheduler.run_once()
        advanced += result.advanced
        created += result.created
        missed += result.missed
        t += every
    return SchedulerResult(advanced, created, missed)


class Rendezvous:
    """A one-shot barrier: ``wait()`` returns once ``parties`` tasks have called it."""

    def __init__(self, parties: int) -> None:
        self.parties = parties
        self.arrived = 0
        self.all_here = trio.Event()

    async def wait(self) -> None:
        self.arrived += 1
        if self.arrived >= self.parties:
            self.all_here.set()
        with trio.fail_after(10):
            await self.all_here.wait()


class ReadThenRace:
    """The real store, except that ``due_cron_tasks`` waits at a shared barrier after reading,
    so every scheduler has read the same due tasks before any of them writes: the CAS race
    that two leaders (or a leader change) produce, made deterministic."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.barrier: Rendezvous | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def due_cron_tasks(self, now: datetime, limit: int) -> list[DueCronTask]:
        due = await self._store.due_cron_tasks(now, limit)
        if self.barrier is not None:
            await self.barrier.wait()
        return due


class ChangeAfterRead:
    """The real store, except that right after the due tasks were read, ``change()`` runs
    (e.g. the API disables or deletes the task in that instant)."""

    def __init__(self, store: Store, change: Callable[[], Awaitable[None]]) -> None:
        self._store = store
        self._change = change

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def due_cron_tasks(self, now: datetime, limit: int) -> list[DueCronTask]:
        due = await self._store.due_cron_tasks(now, limit)
        if due:
            await self._change()
        return due


# ---------------------------------------------------------------------- basic idempotency


async def test_due_task_fires_once_and_advances(store: Store) -> None:
    """A due cron task yields exactly one pending execution for its slot and ``next_run_at``
    moves to the following slot; a second pass at the same instant creates nothing (the CAS on
    ``next_run_at`` no longer matches and the task is no longer due)."""
    org, _ = await make_org(store)
    slot = datetime(2025, 6, 2, 12, 0, tzinfo=UTC)
    task_id = await add_cron(store, org, "*/5 * * * *", after=slot - MINUTE)
    clock = ManualClock(slot - MINUTE)
    scheduler = Scheduler(store, clock, misfire_grace_s=GRACE_S)

    assert await scheduler.run_once() == SchedulerResult(0, 0, 0)  # not due yet
    assert await executions(store, org, task_id) == []

    clock.set(slot + timedelta(seconds=7))
    assert await scheduler.run_once() == SchedulerResult(1, 1, 0)
    rows = await executions(store, org, task_id)
    assert [(r["status"], r["scheduled_for"]) for r in rows] == [("pending", slot)]
    assert (await store.get_task(org, task_id))["next_run_at"] == slot + timedelta(minutes=5)

    assert await scheduler.run_once() == SchedulerResult(0, 0, 0)
    assert await Scheduler(store, clock, misfire_grace_s=GRACE_S).run_once() == SchedulerResult(
        0, 0, 0
    )
    assert len(await executions(store, org, task_id)) == 1


async def test_replaying_a_fired_slot_creates_no_second_run(
    store: Store, database_url: str
) -> None:
    """The unique ``(task_id, scheduled_for)`` index alone stops a duplicate: even when
    ``next_run_at`` is put back to a slot that already ran (a stale writer, a restored backup),
    firing it again inserts nothing, and the task still moves on."""
    org, _ = await make_org(store)
    slot = datetime(2025, 6, 2, 12, 0, tzinfo=UTC)
    task_id = await add_cron(store, org, "* * * * *", after=slot - MINUTE)
    clock = ManualClock(slot)
    scheduler = Scheduler(store, clock, misfire_grace_s=GRACE_S)
    assert await scheduler.run_once() == SchedulerResult(1, 1, 0)

    async with raw_connection(database_url) as conn:
        await trio_asyncio.aio_as_trio(conn.execute)(
            "update tasks set next_run_at = $2 where id = $1", task_id, slot
        )
    assert await scheduler.run_once() == SchedulerResult(1, 0, 0)
    rows = await executions(store, org, task_id)
    assert [r["scheduled_for"] for r in rows] == [slot]
    assert (await store.get_task(org, task_id))["next_run_at"] == slot + MINUTE


# ------------------------------------------------------------------------------------- DST


async def test_skipped_wall_time_runs_once_at_the_jump(store: Store) -> None:
    """``30 2 * * *`` in New York on 2025-03-09 (02:00-03:00 does not exist): stepping through
    the whole local day minute by minute produces exactly one run, at the jump — 03:00 EDT,
    07:00Z — and the next run is 02:30 EDT the day after."""
    org, _ = await make_org(store)
    start, end = local_day(2025, 3, 9, NY)
    task_id = await add_cron(store, org, "30 2 * * *", after=start - MINUTE, timezone=NY)
    clock = ManualClock(start)
    total = await step(Scheduler(store, clock, misfire_grace_s=GRACE_S), clock, start, end, MINUTE)

    rows = await executions(store, org, task_id)
    jump = datetime(2025, 3, 9, 7, 0, tzinfo=UTC)
    assert [(r["status"], r["scheduled_for"]) for r in rows] == [("pending", jump)]
    assert total == SchedulerResult(1, 1, 0)
    assert (await store.get_task(org, task_id))["next_run_at"] == datetime(
        2025, 3, 10, 6, 30, tzinfo=UTC
    )


async def test_repeated_wall_time_runs_once(store: Store) -> None:
    """``30 1 * * *`` in New York on 2025-11-02 (01:00-02:00 happens twice): exactly one run,
    at the first occurrence (01:30 EDT, 05:30Z) — croniter alone would fire at 06:30Z too."""
    org, _ = await make_org(store)
    start, end = local_day(2025, 11, 2, NY)
    task_id = await add_cron(store, org, "30 1 * * *", after=start - MINUTE, timezone=NY)
    clock = ManualClock(start)
    total = await step(Scheduler(store, clock, misfire_grace_s=GRACE_S), clock, start, end, MINUTE)

    rows = await executions(store, org, task_id)
    assert [(r["status"], r["scheduled_for"]) for r in rows] == [
        ("pending", datetime(2025, 11, 2, 5, 30, tzinfo=UTC))
    ]
    assert total.created == 1 and total.missed == 0


async def test_hourly_job_follows_real_time_across_both_transitions(store: Store) -> None:
    """Wildcard-hour jobs follow real elapsed time: ``0 * * * *`` runs 25 times on the 25-hour
    local day 2025-11-02 and 23 times on the 23-hour day 2025-03-09, one run per real hour."""
    org, _ = await make_org(store)
    for (y, m, d), expected in (((2025, 11, 2), 25), ((2025, 3, 9), 23)):
        start, end = local_day(y, m, d, NY)
        task_id = await add_cron(store, org, "0 * * * *", after=start - MINUTE, timezone=NY)
        clock = ManualClock(start)
        await step(Scheduler(store, clock, misfire_grace_s=GRACE_S), clock, start, end, MINUTE)
        rows = await executions(store, org, task_id)
        slots = [r["scheduled_for"] for r in rows]
        assert all(r["status"] == "pending" for r in rows)
        assert len(slots) == expected
        assert slots == [start + timedelta(hours=h) for h in range(expected)]


async def test_restart_inside_repeated_hour_adds_no_duplicate(store: Store) -> None:
    """A scheduler restarted in the middle of the repeated hour (01:15 EST, the second pass)
    starts from what the database says, so the fixed-time job that already ran at 01:30 EDT does
    not run again, and wildcard jobs keep exactly one run per real slot: over the local day
    ``30 1 * * *`` → 1 run, ``0 * * * *`` → 25, ``*/15 * * * *`` → 100."""
    org, _ = await make_org(store)
    start, end = local_day(2025, 11, 2, NY)
    tasks = {
        expr: await add_cron(store, org, expr, after=start - MINUTE, timezone=NY)
        for expr in ("30 1 * * *", "0 * * * *", "*/15 * * * *")
    }
    restart_at = datetime(2025, 11, 2, 6, 15, tzinfo=UTC)  # 01:15 EST, second pass
    assert restart_at.astimezone(ZoneInfo(NY)).fold == 1

    clock = ManualClock(start)
    await step(Scheduler(store, clock, misfire_grace_s=GRACE_S), clock, start, restart_at, MINUTE)
    fixed_before = await executions(store, org, tasks["30 1 * * *"])
    assert len(fixed_before) == 1

    new_clock = ManualClock(restart_at)  # a new process: new actor, new clock object
    await step(
        Scheduler(store, new_clock, misfire_grace_s=GRACE_S), new_clock, restart_at, end, MINUTE
    )
    counts = {expr: len(await executions(store, org, tid)) for expr, tid in tasks.items()}
    assert counts == {"30 1 * * *": 1, "0 * * * *": 25, "*/15 * * * *": 100}
    for tid in tasks.values():
        slots = [r["scheduled_for"] for r in await executions(store, org, tid)]
        assert len(slots) == len(set(slots))


# ------------------------------------------------------------------------- concurrency


async def test_two_schedulers_one_database_one_run_per_minute(store: Store) -> None:
    """Two schedulers (two nodes) ticking concurrently on one database for 60 simulated minutes
    on a ``* * * * *`` task create exactly 60 executions, one per minute. Each round both have
    read the task as due before either writes, so only the compare-and-set on ``next_run_at``
    decides: exactly one of them advances the task per minute."""
    org, _ = await make_org(store)
    start = datetime(2025, 6, 2, 12, 0, tzinfo=UTC)
    task_id = await add_cron(store, org, "* * * * *", after=start - MINUTE)
    clock = ManualClock(start)
    views = [ReadThenRace(store), ReadThenRace(store)]
    schedulers = [Scheduler(v, clock, misfire_grace_s=GRACE_S) for v in views]
    results: list[SchedulerResult] = []

    async def tick(s: Scheduler) -> None:
        results.append(await s.run_once())

    for minute in range(60):
        clock.set(start + minute * MINUTE + timedelta(seconds=1))
        barrier = Rendezvous(2)
        for v in views:
            v.barrier = barrier
        async with trio.open_nursery() as nursery:
            for s in schedulers:
                nursery.start_soon(tick, s)

    assert sum(r.advanced for r in results) == 60
    assert sum(r.created for r in results) == 60
    rows = await executions(store, org, task_id)
    assert [r["scheduled_for"] for r in rows] == [start + i * MINUTE for i in range(60)]
    assert all(r["status"] == "pending" for r in rows)


async def test_two_schedulers_many_tasks_free_running(store: Store) -> None:
    """Two schedulers ticking concurrently without any forced ordering, over 40 tasks and 30
    simulated minutes: every task gets exactly one run per minute, and neither scheduler fails
    (no deadlock between their batched compare-and-set updates)."""
    org, _ = await make_org(store)
    start = datetime(2025, 6, 2, 12, 0, tzinfo=UTC)
    ids = [await add_cron(store, org, "* * * * *", after=start - MINUTE) for _ in range(40)]
    clock = ManualClock(start)
    schedulers = [Scheduler(store, clock, misfire_grace_s=GRACE_S) for _ in range(2)]
    results: list[SchedulerResult] = []

    async def tick(s: Scheduler) -> None:
        results.append(await s.run_once())

    for minute in range(30):
        clock.set(start + minute * MINUTE)
        async with trio.open_nursery() as nursery:
            for s in schedulers:
                nursery.start_soon(tick, s)

    assert sum(r.created for r in results) == 40 * 30
    assert sum(r.advanced for r in results) == 40 * 30
    for tid in ids:
        rows = await executions(store, org, tid)
        assert [r["scheduled_for"] for r in rows] == [start + i * MINUTE for i in range(30)]


# ------------------------------------------------------------------------------ misfire


async def test_misfire_runs_latest_slot_and_records_older_as_missed(store: Store) -> None:
    """After 3 hours of downtime, ``*/5 * * * *`` with a 300 s grace gets one pending run (the
    latest slot, which is within grace) and one ``missed`` row (finished) for each of the 36
    older slots — never a burst of runs; ``next_run_at`` ends in the future."""
    org, _ = await make_org(store)
    now = datetime(2025, 6, 2, 12, 0, tzinfo=UTC)
    behind = now - timedelta(hours=3)
    task_id = await add_cron(store, org, "*/5 * * * *", after=behind, next_run_at=behind)
    result = await Scheduler(store, ManualClock(now), misfire_grace_s=GRACE_S).run_once()

    assert result == SchedulerResult(1, 1, 36)
    rows = await executions(store, org, task_id)
    pending = [r for r in rows if r["status"] == "pending"]
    missed = [r for r in rows if r["status"] == "missed"]
    assert [r["scheduled_for"] for r in pending] == [now]
    assert [r["scheduled_for"] for r in missed] == [
        behind + timedelta(minutes=5 * i) for i in range(36)
    ]
    assert all(r["finished_at"] is not None for r in missed)
    assert len(rows) == 37
    assert (await store.get_task(org, task_id))["next_run_at"] == now + timedelta(minutes=5)


async def test_misfire_caps_missed_rows_at_100(store: Store) -> None:
    """Ten hours behind on ``*/5`` (121 slots): the latest runs, only the 100 newest older slots
    get ``missed`` rows, the rest are dropped — a long outage never writes an unbounded burst."""
    org, _ = await make_org(store)
    now = datetime(2025, 6, 2, 12, 0, tzinfo=UTC)
    behind = now - timedelta(hours=10)
    task_id = await add_cron(store, org, "*/5 * * * *", after=behind, next_run_at=behind)
    result = await Scheduler(store, ManualClock(now), misfire_grace_s=GRACE_S).run_once()

    assert result == SchedulerResult(1, 1, 100)
    rows = await executions(store, org, task_id)
    missed = [r["scheduled_for"] for r in rows if r["status"] == "missed"]
    assert missed == [now - timedelta(minutes=5 * i) for i in range(100, 0, -1)]
    assert [r["scheduled_for"] for r in rows if r["status"] == "pending"] == [now]


async def test_slot_older_than_grace_is_never_fired(store: Store) -> None:
    """When even the latest missed slot is older than the grace window, nothing runs: every
    slot is recorded as ``missed`` (at most 100 rows in all), and ``next_run_at`` moves past
    now so the task does not stay due."""
    org, _ = await make_org(store)
    now = datetime(2025, 6, 12, 12, 30, tzinfo=UTC)  # the 12:00 slot is 30 min late
    behind = now - timedelta(days=10)
    task_id = await add_cron(store, org, "0 * * * *", after=behind)
    scheduler = Scheduler(store, ManualClock(now), misfire_grace_s=GRACE_S)
    result = await scheduler.run_once()

    assert result.created == 0
    assert 0 < result.missed <= 100
    rows = await executions(store, org, task_id)
    assert {r["status"] for r in rows} == {"missed"}
    assert len(rows) == result.missed
    assert rows[-1]["scheduled_for"] == datetime(2025, 6, 12, 12, 0, tzinfo=UTC)
    next_run = (await store.get_task(org, task_id))["next_run_at"]
    assert next_run == datetime(2025, 6, 12, 13, 0, tzinfo=UTC)
    assert await scheduler.run_once() == SchedulerResult(0, 0, 0)


async def test_late_tick_within_grace_still_fires(store: Store) -> None:
    """A tick that comes late but within the grace window still fires the slot, for the slot's
    own time (scheduled_for is the slot, not the tick)."""
    org, _ = await make_org(store)
    slot = datetime(2025, 6, 2, 12, 0, tzinfo=UTC)
    task_id = await add_cron(store, org, "0 * * * *", after=slot - MINUTE)
    clock = ManualClock(slot + timedelta(seconds=GRACE_S))
    assert await Scheduler(store, clock, misfire_grace_s=GRACE_S).run_once() == SchedulerResult(
        1, 1, 0
    )
    rows = await executions(store, org, task_id)
    assert [(r["status"], r["scheduled_for"]) for r in rows] == [("pending", slot)]


# --------------------------------------------------------------------- disabled / deleted


async def test_disabled_and_deleted_tasks_are_not_scheduled(
    store: Store, database_url: str
) -> None:
    """A disabled cron task and a deleted one are never turned into executions, however long
    they have been due."""
    org, _ = await make_org(store)
    now = datetime(2025, 6, 2, 12, 0, tzinfo=UTC)
    disabled = await add_cron(store, org, "* * * * *", after=now - MINUTE, enabled=False)
    deleted = await add_cron(store, org, "* * * * *", after=now - MINUTE)
    await store.delete_task(org, deleted)
    clock = ManualClock(now)
    total = await step(
        Scheduler(store, clock, misfire_grace_s=GRACE_S), clock, now, now + 10 * MINUTE, MINUTE
    )
    assert total == SchedulerResult(0, 0, 0)
    assert await execution_count(database_url, disabled) == 0
    assert await execution_count(database_url, deleted) == 0


async def test_task_disabled_or_deleted_between_read_and_write_is_not_fired(
    store: Store, database_url: str
) -> None:
    """The write re-checks ``enabled`` and ``deleted_at`` in the same statement as the CAS: a
    task switched off (or deleted) right after the scheduler read it as due gets no run."""
    org, _ = await make_org(store)
    now = datetime(2025, 6, 2, 12, 0, tzinfo=UTC)
    switched_off = await add_cron(store, org, "* * * * *", after=now - MINUTE)
    removed = await add_cron(store, org, "* * * * *", after=now - MINUTE)

    async def change() -> None:
        await store.update_task(org, switched_off, lambda current: {"enabled": False})
        await store.delete_task(org, removed)

    scheduler = Scheduler(ChangeAfterRead(store, change), ManualClock(now), misfire_grace_s=GRACE_S)
    assert await scheduler.run_once() == SchedulerResult(0, 0, 0)
    assert await execution_count(database_url, switched_off) == 0
    assert await execution_count(database_url, removed) == 0
