"""Plan limits (runlater/plans.py, enforced by migration 006's triggers) through the real API,
scheduler and worker, on a real Postgres database.

The monthly counter is set with SQL to reach the edge of a limit (9,999 of 10,000) instead of
inserting ten thousand rows; everything after that goes through the code under test.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
import trio
from quart_trio import QuartTrio

from runlater.actors.scheduler import Scheduler
from runlater.clock import ManualClock
from runlater.config import Settings
from runlater.errors import LimitExceeded
from runlater.plans import PLANS
from runlater.store.postgres import Store
from runlater.web.app import create_app
from tests.helpers.api import Api, deliver_due
from tests.helpers.db import raw_connection, sql
from tests.helpers.factories import cron_task, make_org
from tests.helpers.sink import serve_sink

TARGET = "http://127.0.0.1:8080/hook"  # never delivered
FREE_LIMIT_MESSAGE = "monthly execution limit reached (free plan: 10,000)"


# ------------------------------------------------------------------------------ helpers


@dataclass
class Org:
    id: UUID
    api: Api


async def new_org(store: Store, app: QuartTrio, name: str, tier: str) -> Org:
    org_id, key = await make_org(store, name, tier=tier)
    return Org(org_id, Api(app, key))


@pytest.fixture
async def free(store: Store, app: QuartTrio) -> Org:
    return await new_org(store, app, "Freebie", "free")


@pytest.fixture
async def pro(store: Store, app: QuartTrio) -> Org:
    return await new_org(store, app, "Prolab", "pro")


async def set_usage(dsn: str, org: UUID, executions: int, month_offset: int = 0) -> None:
    """This month's count (or that of ``month_offset`` months from now), set directly."""
    async with raw_connection(dsn) as conn:
        await sql(
            conn,
            "insert into usage_counters (organization_id, month, executions)"
            " values ($1, (usage_month(now()) + make_interval(months => $3))::date, $2)"
            " on conflict (organization_id, month, shard) do update set executions = $2",
            org,
            executions,
            month_offset,
        )


async def usage(dsn: str, org: UUID) -> int:
    """This month's count: the sum of the organization's counter shards."""
    async with raw_connection(dsn) as conn:
        rows = await sql(
            conn,
            "select coalesce(sum(executions), 0)::bigint as n from usage_counters"
            " where organization_id = $1 and month = usage_month(now())",
            org,
        )
    return rows[0]["n"]


async def count(dsn: str, table: str, org: UUID) -> int:
    async with raw_connection(dsn) as conn:
        rows = await sql(conn, f"select count(*) as n from {table} where organization_id = $1", org)
    return rows[0]["n"]


def assert_limit_exceeded(status: int, body: Any, field: str, message: str) -> None:
    assert status == 422, body
    assert body == {
        "error": {"code": "limit_exceeded", "message": message, "details": {field: [message]}}
    }


# ---------------------------------------------------------------- the plans, one source


async def test_the_database_enforces_the_limits_written_in_plans_py(
    store: Store, database_url: str
) -> None:
    """plans.py holds the issue's numbers; migrations seed ``plans`` with the same, and
    ``Store.migrate()`` writes them again at every start (a drifted row is put back)."""
    issue = {("free", 60, 10_000, True, 7), ("pro", 1, 1_000_000, False, 30)}
    in_python = {
        (p.tier, p.min_cron_interval_minutes, p.monthly_executions, p.hard_stop, p.retention_days)
        for p in PLANS.values()
    }
    assert in_python == issue
    query = (
        "select tier, min_cron_interval_minutes, monthly_executions, hard_stop, retention_days"
        " from plans"
    )
    async with raw_connection(database_url) as conn:
        assert {tuple(r.values()) for r in await sql(conn, query)} == issue
        await sql(conn, "update plans set monthly_executions = 5 where tier = 'free'")
        await store.migrate()
        assert {tuple(r.values()) for r in await sql(conn, query)} == issue


# ------------------------------------------------------------- monthly executions: free


async def test_free_org_at_the_limit_cannot_create_a_task_and_nothing_is_created(
    free: Org, database_url: str
) -> None:
    """9,999 used: one more one-time task fits (one-time tasks count); the next is refused
    with 422 limit_exceeded, and neither its task nor its execution exists."""
    await set_usage(database_url, free.id, 9_999)
    status, body = await free.api.exchange("POST", "/tasks", {"url": TARGET})
    assert status == 202, body
    assert await usage(database_url, free.id) == 10_000

    status, body = await free.api.exchange("POST", "/tasks", {"url": TARGET, "name": "refused"})
    assert_limit_exceeded(status, body, "executions_this_month", FREE_LIMIT_MESSAGE)
    assert await count(database_url, "tasks", free.id) == 1
    assert await count(database_url, "executions", free.id) == 1
    assert await usage(database_url, free.id) == 10_000
    # A cron task creates no execution when it is created: it may still be set up.
    status, body = await free.api.exchange("POST", "/tasks", {"url": TARGET, "cron": "0 * * * *"})
    assert status == 201, body


async def test_trigger_and_manual_retry_are_refused_at_the_limit(
    free: Org, store: Store, database_url: str
) -> None:
    """A manual trigger and a manual retry are new work: refused at the limit, nothing made."""
    status, cron = await free.api.exchange("POST", "/tasks", {"url": TARGET, "cron": "0 * * * *"})
    assert status == 201, cron
    async with serve_sink() as sink:
        status, once = await free.api.exchange(
            "POST", "/tasks", {"url": sink.url + "/status/404", "retry_attempts": 0}
        )
        assert status == 202, once
        await deliver_due(store)
    failed = (await store.get_execution(free.id, UUID(once["data"]["execution_id"])))["status"]
    assert failed == "failed"
    await set_usage(database_url, free.id, 10_000)
    before = await count(database_url, "executions", free.id)

    status, body = await free.api.exchange("POST", f"/tasks/{cron['data']['id']}/trigger")
    assert_limit_exceeded(status, body, "executions_this_month", FREE_LIMIT_MESSAGE)
    retry = f"/executions/{once['data']['execution_id']}/retry"
    status, body = await free.api.exchange("POST", retry)
    assert_limit_exceeded(status, body, "executions_this_month", FREE_LIMIT_MESSAGE)

    assert await count(database_url, "executions", free.id) == before
    assert await usage(database_url, free.id) == 10_000
    # Under the limit the same two calls work (the refusal was the limit, nothing else).
    await set_usage(database_url, free.id, 9_998)
    assert (await free.api.exchange("POST", f"/tasks/{cron['data']['id']}/trigger"))[0] == 202
    retried = await free.api.exchange("POST", f"/executions/{once['data']['execution_id']}/retry")
    assert retried[0] == 202, retried
    assert await usage(database_url, free.id) == 10_000


async def test_automatic_retries_still_run_over_the_limit(
    free: Org, store: Store, database_url: str
) -> None:
    """An accepted task is never dropped: its retries are counted, past the limit, and run."""
    await set_usage(database_url, free.id, 9_999)
    async with serve_sink() as sink:
        status, once = await free.api.exchange(
            "POST", "/tasks", {"url": sink.url + "/status/500", "retry_attempts": 2}
        )
        assert status == 202, once
        await deliver_due(store)  # attempt 1 fails: attempt 2 is scheduled at 10,000 used
        task_id = UUID(once["data"]["task_id"])
        runs = await store.list_task_executions(free.id, task_id, status=None, limit=10, offset=0)
        assert sorted((r["attempt"], r["status"]) for r in runs) == [(1, "failed"), (2, "pending")]
        assert await usage(database_url, free.id) == 10_001

        async with raw_connection(database_url) as conn:  # its backoff has passed
            await sql(conn, "update executions set scheduled_for = now() where status = 'pending'")
        await deliver_due(store)
        assert len(sink.requests) == 2
    runs = await store.list_task_executions(free.id, task_id, status=None, limit=10, offset=0)
    assert sorted((r["attempt"], r["status"]) for r in runs) == [
        (1, "failed"),
        (2, "failed"),
        (3, "pending"),
    ]
    assert await usage(database_url, free.id) == 10_002


async def test_a_batch_over_the_limit_creates_nothing(free: Org, database_url: str) -> None:
    """``POST /tasks/batch`` is one statement: 3 items with 2 left fail as a whole."""
    await set_usage(database_url, free.id, 9_998)
    batch = {"url": TARGET, "queue": "q", "items": [{"n": 1}, {"n": 2}, {"n": 3}]}
    status, body = await free.api.exchange("POST", "/tasks/batch", batch)
    assert_limit_exceeded(status, body, "executions_this_month", FREE_LIMIT_MESSAGE)
    assert await count(database_url, "tasks", free.id) == 0
    assert await count(database_url, "executions", free.id) == 0
    assert await usage(database_url, free.id) == 9_998
    status, body = await free.api.exchange("POST", "/tasks/batch", {**batch, "items": [1, 2]})
    assert status == 201, body
    assert await usage(database_url, free.id) == 10_000


async def test_concurrent_creations_never_pass_the_hard_limit(
    aio_loop: object, free: Org, database_url: str, app: QuartTrio
) -> None:
    """20 creations at once with 5 left: exactly 5 succeed, the counter stops at 10,000."""
    await set_usage(database_url, free.id, 9_995)
    wide = await Store.open(database_url, pool_size=20)
    try:
        api = Api(
            create_app(wide, Settings(allow_private_targets=True), ManualClock(datetime.now(UTC))),
            free.api.key,
        )
        statuses: list[int] = []

        async def create(i: int) -> None:
            status, _ = await api.exchange("POST", "/tasks", {"url": TARGET, "name": f"t{i}"})
            statuses.append(status)

        async with trio.open_nursery() as nursery:
            for i in range(20):
                nursery.start_soon(create, i)
    finally:
        with trio.CancelScope(shield=True):
            await wide.close()
    assert sorted(statuses) == [202] * 5 + [422] * 15
    assert await usage(database_url, free.id) == 10_000
    assert await count(database_url, "executions", free.id) == 5
    assert await count(database_url, "tasks", free.id) == 5


async def test_a_new_month_counts_from_zero(free: Org, database_url: str) -> None:
    """The counter is keyed by UTC month: last month's 10,000 do not stop this month."""
    await set_usage(database_url, free.id, 10_000, month_offset=-1)
    status, body = await free.api.exchange("POST", "/tasks", {"url": TARGET})
    assert status == 202, body
    assert await usage(database_url, free.id) == 1
    status, org = await free.api.exchange("GET", "/org")
    assert status == 200
    assert org["data"]["usage"]["executions_this_month"] == 1
    async with raw_connection(database_url) as conn:
        months = await sql(
            conn,
            "select month, sum(executions) as executions from usage_counters"
            " where organization_id = $1 group by month order by month",
            free.id,
        )
    assert [m["executions"] for m in months] == [10_000, 1]


# --------------------------------------------------------------- monthly executions: pro


async def test_pro_over_the_limit_is_allowed_and_reported(pro: Org, database_url: str) -> None:
    await set_usage(database_url, pro.id, 1_000_000)
    status, body = await pro.api.exchange("POST", "/tasks", {"url": TARGET})
    assert status == 202, body
    status, cron = await pro.api.exchange("POST", "/tasks", {"url": TARGET, "cron": "* * * * *"})
    assert status == 201, cron
    assert (await pro.api.exchange("POST", f"/tasks/{cron['data']['id']}/trigger"))[0] == 202
    status, org = await pro.api.exchange("GET", "/org")
    assert status == 200
    assert org["data"]["usage"] | {"period_start": None, "resets_at": None} == {
        "executions_this_month": 1_000_002,
        "limit": 1_000_000,
        "hard_limit": False,
        "warning": True,
        "period_start": None,
        "resets_at": None,
    }


async def test_counts_from_a_former_plan_still_count_after_a_downgrade(
    free: Org, database_url: str
) -> None:
    """A warn-only plan counts in several shards; after a change to a hard-stop plan in the
    same month its check adds them: 9,999 counted as pro leave room for one."""
    async with raw_connection(database_url) as conn:
        await sql(
            conn,
            "insert into usage_counters (organization_id, month, shard, executions)"
            " values ($1, usage_month(now()), 3, 9000), ($1, usage_month(now()), 5, 999)",
            free.id,
        )
    assert (await free.api.exchange("POST", "/tasks", {"url": TARGET}))[0] == 202
    status, body = await free.api.exchange("POST", "/tasks", {"url": TARGET})
    assert_limit_exceeded(status, body, "executions_this_month", FREE_LIMIT_MESSAGE)
    status, org = await free.api.exchange("GET", "/org")
    assert org["data"]["usage"]["executions_this_month"] == 10_000


async def test_concurrent_creations_of_a_pro_org_are_all_counted(
    aio_loop: object, pro: Org, database_url: str
) -> None:
    """Warn-only counting spreads over shards but loses nothing."""
    wide = await Store.open(database_url, pool_size=10)
    try:
        app = create_app(wide, Settings(allow_private_targets=True), ManualClock(datetime.now(UTC)))
        api = Api(app, pro.api.key)
        statuses: list[int] = []

        async def create(i: int) -> None:
            statuses.append((await api.exchange("POST", "/tasks", {"url": TARGET}))[0])

        async with trio.open_nursery() as nursery:
            for i in range(30):
                nursery.start_soon(create, i)
    finally:
        with trio.CancelScope(shield=True):
            await wide.close()
    assert statuses == [202] * 30
    assert await usage(database_url, pro.id) == 30
    async with raw_connection(database_url) as conn:
        shards = await sql(
            conn, "select count(*) as n from usage_counters where organization_id = $1", pro.id
        )
    assert shards[0]["n"] > 1


# ----------------------------------------------------------------------- the scheduler


async def add_hourly(store: Store, org: UUID, slot: datetime, name: str) -> UUID:
    row = await store.insert_task(
        org,
        cron_task(TARGET, "0 * * * *", slot.isoformat(), interval_minutes=60, name=name),
        None,
    )
    return row["id"]


async def test_cron_slots_over_the_limit_are_cancelled_and_the_batch_goes_on(
    store: Store, app: QuartTrio, database_url: str
) -> None:
    """One scheduler batch: a free org at its limit gets cancelled rows (not counted, next run
    moved on); a free org crossing the limit inside the batch gets exactly what fits; another
    free org and a pro org over 1,000,000 are unaffected."""
    full = await new_org(store, app, "Full", "free")
    edge = await new_org(store, app, "Edge", "free")
    fine = await new_org(store, app, "Fine", "free")
    big = await new_org(store, app, "Big", "pro")
    slot = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    tasks = {
        "full 1": await add_hourly(store, full.id, slot, "full 1"),
        "full 2": await add_hourly(store, full.id, slot, "full 2"),
        "edge 1": await add_hourly(store, edge.id, slot, "edge 1"),
        "edge 2": await add_hourly(store, edge.id, slot, "edge 2"),
        "fine": await add_hourly(store, fine.id, slot, "fine"),
        "big": await add_hourly(store, big.id, slot, "big"),
    }
    await set_usage(database_url, full.id, 10_000)
    await set_usage(database_url, edge.id, 9_999)
    await set_usage(database_url, big.id, 1_000_000)

    scheduler = Scheduler(store, ManualClock(slot + timedelta(seconds=30)), misfire_grace_s=300)
    result = await scheduler.run_once()
    assert result.advanced == 6

    async with raw_connection(database_url) as conn:
        rows = await sql(
            conn,
            "select t.name, t.next_run_at, e.status, e.error_message, e.scheduled_for"
            " from tasks t join executions e on e.task_id = t.id order by t.name",
        )
    by_name = {r["name"]: r for r in rows}
    assert len(rows) == 6
    for row in rows:
        assert row["scheduled_for"] == slot
        assert row["next_run_at"] == slot + timedelta(hours=1)
    for name in ("full 1", "full 2"):
        assert (by_name[name]["status"], by_name[name]["error_message"]) == (
            "cancelled",
            FREE_LIMIT_MESSAGE,
        )
    assert sorted(by_name[n]["status"] for n in ("edge 1", "edge 2")) == ["cancelled", "pending"]
    assert (by_name["fine"]["status"], by_name["big"]["status"]) == ("pending", "pending")
    assert await usage(database_url, full.id) == 10_000
    assert await usage(database_url, edge.id) == 10_000
    assert await usage(database_url, fine.id) == 1
    assert await usage(database_url, big.id) == 1_000_001
    # The next tick finds nothing due: the cancelled slots are done with, not retried.
    assert (await scheduler.run_once()).advanced == 0
    assert set(tasks) == set(by_name)


# ----------------------------------------------------------------- minimum cron interval


async def test_free_cron_every_5_minutes_is_refused_on_create_and_patch(
    free: Org, pro: Org, database_url: str
) -> None:
    message = (
        "free plan allows a cron interval of at least 60 minutes; this one runs every 5 minutes"
    )
    status, body = await free.api.exchange("POST", "/tasks", {"url": TARGET, "cron": "*/5 * * * *"})
    assert_limit_exceeded(status, body, "cron", message)
    status, body = await free.api.exchange(
        "POST", "/tasks", {"url": TARGET, "cron_expression": "* * * * *"}
    )
    assert_limit_exceeded(status, body, "cron_expression", message.replace("5 minutes", "1 minute"))
    assert await count(database_url, "tasks", free.id) == 0

    status, hourly = await free.api.exchange("POST", "/tasks", {"url": TARGET, "cron": "0 * * * *"})
    assert status == 201, hourly
    task_path = f"/tasks/{hourly['data']['id']}"
    status, body = await free.api.exchange("PATCH", task_path, {"cron": "*/5 * * * *"})
    assert_limit_exceeded(status, body, "cron", message)
    status, body = await free.api.exchange("PUT", task_path, {"task": {"cron": "*/5 * * * *"}})
    assert_limit_exceeded(status, body, "cron", message)
    status, task = await free.api.exchange("GET", task_path)
    assert task["data"]["cron_expression"] == "0 * * * *"
    assert task["data"]["next_run_at"] == hourly["data"]["next_run_at"]
    status, body = await free.api.exchange("PATCH", task_path, {"cron": "30 */2 * * *"})
    assert status == 200, body

    status, fast = await pro.api.exchange("POST", "/tasks", {"url": TARGET, "cron": "*/5 * * * *"})
    assert status == 201, fast
    status, body = await pro.api.exchange(
        "PATCH", f"/tasks/{fast['data']['id']}", {"cron": "* * * * *"}
    )
    assert status == 200, body


async def test_a_fast_cron_kept_from_a_former_plan_can_be_edited_but_not_re_armed(
    free: Org, store: Store, database_url: str
) -> None:
    """After a downgrade to free: renaming a 5-minute cron is fine; enabling it again, or any
    new fast schedule, is not (the check runs when the schedule or the switch changes)."""
    async with raw_connection(database_url) as conn:
        await sql(conn, "update organizations set tier = 'pro' where id = $1", free.id)
        status, fast = await free.api.exchange(
            "POST", "/tasks", {"url": TARGET, "cron": "*/5 * * * *", "enabled": False}
        )
        assert status == 201, fast
        await sql(conn, "update organizations set tier = 'free' where id = $1", free.id)
    path = f"/tasks/{fast['data']['id']}"
    status, body = await free.api.exchange("PATCH", path, {"name": "renamed"})
    assert status == 200, body
    status, body = await free.api.exchange("PATCH", path, {"enabled": True})
    assert status == 422 and body["error"]["code"] == "limit_exceeded", body
    assert (await store.get_task(free.id, UUID(fast["data"]["id"])))["enabled"] is False
    status, body = await free.api.exchange("DELETE", path)
    assert status == 204, body


async def test_the_limit_error_carries_its_field_from_the_store(store: Store, free: Org) -> None:
    """Any path that writes a task meets the same check: the store raises LimitExceeded."""
    with pytest.raises(LimitExceeded) as raised:
        await store.insert_task(
            free.id,
            cron_task(TARGET, "*/10 * * * *", datetime.now(UTC).isoformat(), interval_minutes=10),
            None,
        )
    assert raised.value.field == "cron_expression"
    assert "every 10" in raised.value.message
