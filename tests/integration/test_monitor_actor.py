"""The Monitor actor and the ping statement together, driven by ``run_once()`` and a manual clock
on the real database: interval and cron schedules (one across a DST change), grace, a start
without a finish, rid pairing, paused monitors, a ping that arrives while the Monitor marks,
and random sequences checked step by step against the reference model
(``runlater.domain.heartbeat``)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
import trio
from quart_trio import QuartTrio

from runlater.actors.monitor import Monitor
from runlater.clock import ManualClock
from runlater.cron import CronSchedule
from runlater.domain import heartbeat
from runlater.domain.monitor_service import MonitorService
from runlater.domain.monitors import schedule_of
from runlater.domain.urls import UrlPolicy
from runlater.store.monitors import Ping
from runlater.store.postgres import Store
from runlater.store.queries import Q
from tests.helpers.api import Api
from tests.helpers.db import raw_connection, sql


@pytest.fixture
def monitor_actor(store: Store, clock: ManualClock) -> Monitor:
    return Monitor(store, clock, interval_s=5.0)


async def create(api: Api, **fields: Any) -> dict[str, Any]:
    fields.setdefault("name", f"job-{uuid4().hex[:8]}")
    reply = await api.post("/monitors", json=fields)
    assert reply.status == 201, reply.body
    return reply.body["data"]


async def ping(
    app: QuartTrio, monitor: dict[str, Any], suffix: str = "", rid: UUID | None = None
) -> None:
    path = f"/ping/{monitor['ping_token']}" + (f"/{suffix}" if suffix else "")
    response = await app.test_client().post(path, query_string={"rid": str(rid)} if rid else None)
    assert response.status_code == 200, await response.get_data(as_text=True)


async def status_of(store: Store, org_id: UUID, monitor: dict[str, Any]) -> str:
    found = await store.get_monitor(org_id, UUID(monitor["id"]))
    return str(found["status"])


@pytest.fixture
async def org_id(store: Store, api: Api) -> UUID:
    return UUID((await api.get("/org")).body["data"]["id"])


async def test_an_interval_monitor_goes_down_after_interval_plus_grace_and_recovers(
    api: Api,
    app: QuartTrio,
    store: Store,
    clock: ManualClock,
    monitor_actor: Monitor,
    org_id: UUID,
) -> None:
    monitor = await create(api, interval_seconds=600, grace_period_seconds=60)
    assert (await monitor_actor.run_once(clock.now() + timedelta(days=30))).marked == []  # new
    await ping(app, monitor)
    t0 = clock.now()
    assert (await monitor_actor.run_once(t0 + timedelta(seconds=659))).marked == []
    assert await status_of(store, org_id, monitor) == "up"
    # A late ping inside the grace counts: the next is expected an interval after it.
    clock.set(t0 + timedelta(seconds=640))
    await ping(app, monitor)
    assert (await monitor_actor.run_once(t0 + timedelta(seconds=640 + 659))).marked == []
    tick = await monitor_actor.run_once(t0 + timedelta(seconds=640 + 660))
    assert tick.marked == [UUID(monitor["id"])]
    assert await status_of(store, org_id, monitor) == "down"
    assert (await monitor_actor.run_once(t0 + timedelta(days=1))).marked == []  # once
    clock.set(t0 + timedelta(days=1))
    await ping(app, monitor)
    assert await status_of(store, org_id, monitor) == "up"


async def test_a_cron_monitor_across_the_spring_dst_change(
    api: Api,
    app: QuartTrio,
    store: Store,
    clock: ManualClock,
    monitor_actor: Monitor,
    org_id: UUID,
) -> None:
    # Europe/Berlin skips 02:00-03:00 on 2026-03-29: a 02:30 job runs once, at the jump
    # (03:00 CEST = 01:00 UTC), by the project's cron rules.
    clock.set(datetime(2026, 3, 28, 1, 0, tzinfo=UTC))
    monitor = await create(
        api, cron="30 2 * * *", timezone="Europe/Berlin", grace_period_seconds=300
    )
    clock.set(datetime(2026, 3, 28, 1, 30, 5, tzinfo=UTC))  # 02:30:05 CET, the job's ping
    await ping(app, monitor)
    found = await store.get_monitor(org_id, UUID(monitor["id"]))
    jump = datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    assert found["next_expected_at"] == jump
    assert jump == CronSchedule("30 2 * * *", "Europe/Berlin").next_after(clock.now())
    assert (await monitor_actor.run_once(jump + timedelta(seconds=299))).marked == []
    assert (await monitor_actor.run_once(jump + timedelta(seconds=300))).marked == [
        UUID(monitor["id"])
    ]
    clock.set(jump + timedelta(seconds=400))  # late: it recovers
    await ping(app, monitor)
    found = await store.get_monitor(org_id, UUID(monitor["id"]))
    assert found["status"] == "up"
    # The day after, 02:30 CEST again: 00:30 UTC.
    assert found["next_expected_at"] == datetime(2026, 3, 30, 0, 30, tzinfo=UTC)


async def test_a_start_without_a_finish_goes_down_after_the_grace(
    api: Api,
    app: QuartTrio,
    store: Store,
    clock: ManualClock,
    monitor_actor: Monitor,
    org_id: UUID,
) -> None:
    monitor = await create(api, interval_seconds=86400, grace_period_seconds=120)
    await ping(app, monitor, "start")
    start = clock.now()
    assert (await monitor_actor.run_once(start + timedelta(seconds=119))).marked == []
    assert await status_of(store, org_id, monitor) == "new"
    assert (await monitor_actor.run_once(start + timedelta(seconds=120))).marked == [
        UUID(monitor["id"])
    ]
    assert await status_of(store, org_id, monitor) == "down"
    # A finish that comes late still records the run and recovers the monitor.
    clock.set(start + timedelta(seconds=200))
    await ping(app, monitor)
    found = await store.get_monitor(org_id, UUID(monitor["id"]))
    assert found["status"] == "up" and found["last_duration_ms"] == 200_000


async def test_rid_pairs_overlapping_runs(
    api: Api,
    app: QuartTrio,
    store: Store,
    clock: ManualClock,
    monitor_actor: Monitor,
    org_id: UUID,
) -> None:
    monitor = await create(api, interval_seconds=3600, grace_period_seconds=60)
    first, second = uuid4(), uuid4()
    await ping(app, monitor, "start", first)
    t0 = clock.now()
    clock.advance(30)
    await ping(app, monitor, "start", second)
    clock.advance(20)
    await ping(app, monitor, "0", first)  # the first run ends; the second is still open
    found = await store.get_monitor(org_id, UUID(monitor["id"]))
    assert found["status"] == "up" and found["last_duration_ms"] == 50_000
    assert found["started_rid"] == second
    # The open second run has its grace from its own start.
    assert found["down_at"] == t0 + timedelta(seconds=30 + 60)
    assert (await monitor_actor.run_once(t0 + timedelta(seconds=89))).marked == []
    assert (await monitor_actor.run_once(t0 + timedelta(seconds=90))).marked == [
        UUID(monitor["id"])
    ]


async def test_a_paused_monitor_is_not_watched_until_a_ping(
    api: Api,
    app: QuartTrio,
    store: Store,
    clock: ManualClock,
    monitor_actor: Monitor,
    org_id: UUID,
) -> None:
    monitor = await create(api, interval_seconds=60, grace_period_seconds=0)
    await ping(app, monitor)
    reply = await api.patch(f"/monitors/{monitor['id']}", json={"status": "paused"})
    assert reply.body["data"]["status"] == "paused"
    assert (await monitor_actor.run_once(clock.now() + timedelta(days=7))).marked == []
    assert await status_of(store, org_id, monitor) == "paused"
    clock.advance(3600)
    await ping(app, monitor)
    assert await status_of(store, org_id, monitor) == "up"
    assert (await monitor_actor.run_once(clock.now() + timedelta(seconds=60))).marked == [
        UUID(monitor["id"])
    ]


async def test_a_ping_holding_the_row_wins_over_the_tick(
    api: Api,
    store: Store,
    clock: ManualClock,
    monitor_actor: Monitor,
    org_id: UUID,
    database_url: str,
    app: QuartTrio,
) -> None:
    """A ping in flight while the Monitor marks: the tick skips the row the ping holds, and
    once the ping commits the monitor is up with its new deadline, not down."""
    monitor = await create(api, interval_seconds=60, grace_period_seconds=0)
    await ping(app, monitor)
    late = clock.now() + timedelta(seconds=90)
    async with raw_connection(database_url) as conn:
        await sql(conn, "begin")
        rows = await sql(
            conn,
            Q.ping_monitor,
            UUID(monitor["ping_token"]),
            "success",
            None,
            None,
            late,
            "POST",
            None,
            None,
            b"",
            False,
        )
        assert rows[0]["new_status"] == "up"
        with trio.fail_after(10):  # it must not wait for the ping's lock
            tick = await monitor_actor.run_once(late)
        assert tick.marked == []
        await sql(conn, "commit")
    assert (await monitor_actor.run_once(late)).marked == []
    found = await store.get_monitor(org_id, UUID(monitor["id"]))
    assert found["status"] == "up" and found["down_at"] == late + timedelta(seconds=60)


async def test_a_ping_after_the_mark_is_a_recovery(
    api: Api,
    app: QuartTrio,
    store: Store,
    clock: ManualClock,
    monitor_actor: Monitor,
    org_id: UUID,
) -> None:
    monitor = await create(api, interval_seconds=60, grace_period_seconds=0)
    await ping(app, monitor)
    late = clock.now() + timedelta(seconds=60)
    assert (await monitor_actor.run_once(late)).marked == [UUID(monitor["id"])]
    clock.set(late)  # the same instant: the ping came right after the mark
    found = await store.ping_monitor(
        Ping(
            UUID(monitor["ping_token"]), "success", None, None, late, "GET", None, None, b"", False
        )
    )
    assert found is not None
    assert (found["old_status"], found["new_status"]) == ("down", "up")


async def test_one_tick_marks_every_overdue_monitor_in_one_statement(
    api: Api,
    app: QuartTrio,
    store: Store,
    clock: ManualClock,
    monitor_actor: Monitor,
) -> None:
    monitors = [await create(api, interval_seconds=60, grace_period_seconds=0) for _ in range(5)]
    for monitor in monitors[:4]:
        await ping(app, monitor)
    tick = await monitor_actor.run_once(clock.now() + timedelta(seconds=61))
    assert sorted(tick.marked) == sorted(UUID(m["id"]) for m in monitors[:4])


async def test_the_monitor_tops_up_a_cron_monitors_instants(
    api: Api,
    app: QuartTrio,
    store: Store,
    clock: ManualClock,
    monitor_actor: Monitor,
    org_id: UUID,
) -> None:
    monitor = await create(api, cron="* * * * *", grace_period_seconds=0)
    found = await store.get_monitor(org_id, UUID(monitor["id"]))
    first_refresh = found["cron_refresh_at"]
    assert first_refresh > clock.now()
    assert (await monitor_actor.run_once(first_refresh - timedelta(seconds=1))).refreshed == 0
    assert (await monitor_actor.run_once(first_refresh)).refreshed == 1
    found = await store.get_monitor(org_id, UUID(monitor["id"]))
    assert found["cron_refresh_at"] > first_refresh
    assert min(found["cron_upcoming"]) <= first_refresh < max(found["cron_upcoming"])
    # Far beyond every stored instant (the leader was away): a ping still finds its next.
    clock.set(clock.now() + timedelta(days=3, seconds=10))
    await ping(app, monitor)
    found = await store.get_monitor(org_id, UUID(monitor["id"]))
    expected = CronSchedule("* * * * *").next_after(clock.now())
    assert found["next_expected_at"] == expected and found["down_at"] == expected


# ------------------------------------------------------------------ model-based sequences

KINDS = ("success", "fail", "start", "log", "success", "start")


def _model_state(found: dict[str, Any]) -> heartbeat.State:
    return heartbeat.State(
        status=found["status"],
        last_ping_at=found["last_ping_at"],
        next_expected_at=found["next_expected_at"],
        started_at=found["started_at"],
        started_rid=found["started_rid"],
        down_at=found["down_at"],
    )


@pytest.mark.parametrize("seed", range(10))
async def test_random_sequences_match_the_reference_model(
    seed: int,
    api: Api,
    store: Store,
    clock: ManualClock,
    monitor_actor: Monitor,
    org_id: UUID,
) -> None:
    rng = random.Random(seed)
    # The service's ping: one statement, and the fix-up when a cron monitor's stored
    # instants have run out between ticks.
    service = MonitorService(store, UrlPolicy(allow_private=True), clock)
    if seed % 2:
        monitor = await create(
            api,
            interval_seconds=rng.choice([60, 300, 3600]),
            grace_period_seconds=rng.choice([0, 30, 300]),
        )
    else:
        monitor = await create(
            api,
            cron=rng.choice(["*/5 * * * *", "0 * * * *"]),
            timezone="Europe/Amsterdam",
            grace_period_seconds=rng.choice([0, 60]),
        )
    stored = await store.get_monitor(org_id, UUID(monitor["id"]))
    schedule = schedule_of(stored)
    model = _model_state(stored)
    rids = [uuid4(), uuid4()]
    now = clock.now()
    for step in range(50):
        now += timedelta(seconds=rng.choice([1, 20, 59, 61, 300, 900, 3700]))
        action = rng.random()
        if action < 0.55:
            kind = rng.choice(KINDS)
            rid = rng.choice([None, *rids])
            outcome = heartbeat.on_ping(model, schedule, kind, now, rid)  # type: ignore[arg-type]
            answer = await service.ping(
                Ping(
                    UUID(monitor["ping_token"]),
                    kind,
                    None,
                    rid,
                    now,
                    "POST",
                    None,
                    None,
                    b"",
                    False,
                )
            )
            assert answer == "ok"
            model = outcome.state
        elif action < 0.9:
            tick = await monitor_actor.run_once(now)
            overdue = heartbeat.is_overdue(model, now)
            assert tick.marked == ([UUID(monitor["id"])] if overdue else []), (seed, step)
            if overdue:
                model = heartbeat.mark_down(model)
        else:
            reply = await api.patch(f"/monitors/{monitor['id']}", json={"status": "paused"})
            assert reply.status == 200
            model = heartbeat.pause(model)
        stored = await store.get_monitor(org_id, UUID(monitor["id"]))
        assert _model_state(stored) == model, (seed, step, action, _model_state(stored), model)
