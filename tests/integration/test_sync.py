"""``PUT /api/v1/sync`` (docs/api.md): declared tasks matched by name, one transaction.

Through quart's test client into the real app, on a real Postgres clone. "Nothing changed" is
checked on the rows themselves: their ``xmin`` (the transaction that last wrote them) and
``updated_at`` stay as they were.
"""

from __future__ import annotations

import json
from datetime import UTC, timedelta
from typing import Any
from uuid import UUID

import pytest
import trio
from quart_trio import QuartTrio

from runlater.clock import ManualClock
from runlater.cron import CronSchedule
from runlater.store.base import fetch, fetchval
from runlater.store.postgres import Store
from tests.helpers.api import Api, Reply, assert_error, parse_ts
from tests.helpers.db import raw_connection, sql
from tests.helpers.factories import make_org
from tests.helpers.sink import serve_sink
from tests.integration.test_delivery_path import deliver_due

TARGET = "http://127.0.0.1:8080/hook"
KIB = 1024
MIB = 1024 * 1024

NIGHTLY: dict[str, Any] = {
    "name": "nightly",
    "url": TARGET,
    "cron": "0 3 * * *",
    "timezone": "Europe/Amsterdam",
}
WELCOME: dict[str, Any] = {"name": "welcome", "url": TARGET, "delay": "1h", "body": {"user": 42}}


def changes(
    created: list[str] | None = None,
    updated: list[str] | None = None,
    deleted: list[str] | None = None,
    unchanged: list[str] | None = None,
) -> dict[str, list[str]]:
    return {
        "created": created or [],
        "updated": updated or [],
        "deleted": deleted or [],
        "unchanged": unchanged or [],
    }


async def put_sync(api: Api, payload: Any, *, dry_run: bool = False, **kw: Any) -> Reply:
    return await api.call("PUT", "/sync?dry_run=true" if dry_run else "/sync", json=payload, **kw)


async def synced(api: Api, payload: Any, *, dry_run: bool = False) -> dict[str, list[str]]:
    """A sync that must succeed: its per-kind answer for tasks."""
    reply = await put_sync(api, payload, dry_run=dry_run)
    assert reply.status == 200, reply.body
    assert set(reply.body) == {"data"}
    assert reply.body["data"]["dry_run"] is dry_run
    assert set(reply.body["data"]) == {"dry_run", "tasks"}
    return reply.body["data"]["tasks"]


async def snapshot(store: Store, org_id: UUID) -> dict[str, list[dict[str, Any]]]:
    """Every task and execution row of the organization, with the transaction that wrote it."""
    tasks = await store._run(
        fetch,
        "select *, xmin::text as written_by from tasks where organization_id = $1 order by id",
        org_id,
    )
    executions = await store._run(
        fetch,
        "select *, xmin::text as written_by from executions where organization_id = $1 order by id",
        org_id,
    )
    return {"tasks": tasks, "executions": executions}


async def live(store: Store, org_id: UUID) -> dict[str, dict[str, Any]]:
    rows = await store._run(
        fetch,
        "select *, xmin::text as written_by from tasks"
        " where organization_id = $1 and deleted_at is null",
        org_id,
    )
    named = {r["name"]: r for r in rows}
    assert len(named) == len(rows), "names must be unique here"
    return named


# ----------------------------------------------------------------------------------- fixtures


@pytest.fixture
async def org(store: Store) -> tuple[UUID, str]:
    return await make_org(store, "Acme")


@pytest.fixture
def api(app: QuartTrio, org: tuple[UUID, str]) -> Api:
    return Api(app, org[1])


@pytest.fixture
async def other(store: Store, app: QuartTrio) -> tuple[UUID, Api]:
    org_id, key = await make_org(store, "Globex")
    return org_id, Api(app, key)


# ----------------------------------------------------------------------------------- creating


async def test_new_names_are_created_as_post_tasks_creates_them(
    api: Api, store: Store, clock: ManualClock, org: tuple[UUID, str]
) -> None:
    assert await synced(api, {"tasks": [NIGHTLY, WELCOME]}) == changes(
        created=["nightly", "welcome"]
    )
    tasks = await live(store, org[0])
    expected = CronSchedule("0 3 * * *", "Europe/Amsterdam").next_after(clock.now())
    assert tasks["nightly"]["next_run_at"] == expected
    assert tasks["welcome"]["body"] == '{"user":42}'
    pending = await store._run(
        fetch, "select * from executions where task_id = $1", tasks["welcome"]["id"]
    )
    assert [e["status"] for e in pending] == ["pending"]

    # The same declarations through POST /tasks give the same tasks.
    for declared in (NIGHTLY, WELCOME):
        reply = await api.post("/tasks", json={**declared, "name": declared["name"] + " (post)"})
        assert reply.status in (201, 202), reply.body
    listed = {t["name"]: t for t in (await api.get("/tasks")).body["data"]}
    volatile = {"id", "name", "badge_token", "inserted_at", "updated_at", "scheduled_at"}
    for name in ("nightly", "welcome"):
        via_sync = {k: v for k, v in listed[name].items() if k not in volatile}
        via_post = {k: v for k, v in listed[name + " (post)"].items() if k not in volatile}
        assert via_sync == via_post
    assert abs(
        parse_ts(listed["welcome"]["scheduled_at"])
        - parse_ts(listed["welcome (post)"]["scheduled_at"])
    ) < timedelta(seconds=3)


async def test_a_second_identical_sync_is_all_unchanged_and_writes_nothing(
    api: Api, store: Store, org: tuple[UUID, str]
) -> None:
    declared = {"tasks": [NIGHTLY, WELCOME, {"name": "ping", "url": TARGET, "cron": "*/5 * * * *"}]}
    await synced(api, declared)
    before = await snapshot(store, org[0])
    assert await synced(api, declared) == changes(unchanged=["nightly", "welcome", "ping"])
    assert await snapshot(store, org[0]) == before


async def test_only_tasks_that_differ_are_updated(
    api: Api, store: Store, org: tuple[UUID, str]
) -> None:
    await synced(api, {"tasks": [NIGHTLY, WELCOME]})
    before = await live(store, org[0])
    edited = {**NIGHTLY, "url": "http://127.0.0.1:8080/other", "headers": {"X-A": "1"}}
    assert await synced(api, {"tasks": [edited, WELCOME]}) == changes(
        updated=["nightly"], unchanged=["welcome"]
    )
    after = await live(store, org[0])
    assert after["nightly"]["url"] == "http://127.0.0.1:8080/other"
    assert after["nightly"]["headers"] == {"X-A": "1"}
    assert after["nightly"]["id"] == before["nightly"]["id"]
    assert after["nightly"]["updated_at"] > before["nightly"]["updated_at"]
    assert after["nightly"]["next_run_at"] == before["nightly"]["next_run_at"]
    assert after["welcome"]["written_by"] == before["welcome"]["written_by"]
    assert after["welcome"]["updated_at"] == before["welcome"]["updated_at"]


async def test_fields_left_out_keep_their_value(
    api: Api, store: Store, org: tuple[UUID, str]
) -> None:
    await synced(api, {"tasks": [{**NIGHTLY, "timeout_ms": 5000, "method": "POST"}]})
    assert await synced(api, {"tasks": [{"name": "nightly", "url": TARGET}]}) == changes(
        unchanged=["nightly"]
    )
    task = (await live(store, org[0]))["nightly"]
    assert (task["timeout_ms"], task["method"], task["cron_expression"]) == (
        5000,
        "POST",
        "0 3 * * *",
    )


async def test_changing_the_cron_recomputes_next_run_at(
    api: Api, store: Store, clock: ManualClock, org: tuple[UUID, str]
) -> None:
    await synced(api, {"tasks": [NIGHTLY]})
    assert await synced(api, {"tasks": [{**NIGHTLY, "cron": "*/15 * * * *"}]}) == changes(
        updated=["nightly"]
    )
    task = (await live(store, org[0]))["nightly"]
    schedule = CronSchedule("*/15 * * * *", "Europe/Amsterdam")
    assert task["cron_expression"] == "*/15 * * * *"
    assert task["next_run_at"] == schedule.next_after(clock.now())
    assert task["interval_minutes"] == 15

    clock.advance(3600)
    assert await synced(
        api, {"tasks": [{**NIGHTLY, "cron": "*/15 * * * *", "timezone": "UTC"}]}
    ) == (changes(updated=["nightly"]))
    task = (await live(store, org[0]))["nightly"]
    assert task["timezone"] == "UTC"
    assert task["next_run_at"] == CronSchedule("*/15 * * * *", "UTC").next_after(clock.now())


async def test_a_finished_one_time_task_is_not_run_again(
    api: Api, store: Store, org: tuple[UUID, str]
) -> None:
    async with serve_sink() as sink:
        once = {"name": "once", "url": f"{sink.url}/once", "body": "first"}
        assert await synced(api, {"tasks": [once]}) == changes(created=["once"])
        await deliver_due(store)
        assert [r.body for r in await sink.wait_for(1)] == [b"first"]

        assert await synced(api, {"tasks": [once]}) == changes(unchanged=["once"])
        assert await synced(api, {"tasks": [{**once, "body": "second"}]}) == changes(
            updated=["once"]
        )
        assert (await deliver_due(store)).claimed == 0
        assert len(sink.requests) == 1
    task = (await live(store, org[0]))["once"]
    assert task["body"] == "second"
    statuses = await store._run(
        fetch, "select status from executions where task_id = $1", task["id"]
    )
    assert [s["status"] for s in statuses] == ["success"]


async def test_a_one_time_task_keeps_its_time_unless_run_at_changes(
    api: Api, store: Store, clock: ManualClock, org: tuple[UUID, str]
) -> None:
    first = (clock.now() + timedelta(hours=1)).replace(microsecond=0)
    declared = {"name": "later", "url": TARGET, "run_at": first.isoformat()}
    await synced(api, {"tasks": [declared]})
    # A delay only places a new task; the same run_at in another spelling is no change.
    same = {**declared, "run_at": first.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
    assert await synced(api, {"tasks": [same]}) == changes(unchanged=["later"])
    assert await synced(api, {"tasks": [{**declared, "run_at": None, "delay": "5m"}]}) == changes(
        unchanged=["later"]
    )
    moved = first + timedelta(hours=2)
    assert await synced(api, {"tasks": [{**declared, "run_at": moved.isoformat()}]}) == changes(
        updated=["later"]
    )
    task = (await live(store, org[0]))["later"]
    assert task["scheduled_at"] == moved
    executions = await store._run(
        fetch, "select status, scheduled_for from executions where task_id = $1", task["id"]
    )
    assert [(e["status"], e["scheduled_for"]) for e in executions] == [("pending", moved)]

    # A day later the declared run_at is long past: still the same declaration, not an error.
    clock.advance(86400)
    assert await synced(api, {"tasks": [{**declared, "run_at": moved.isoformat()}]}) == changes(
        unchanged=["later"]
    )
    other_time = {**declared, "run_at": (moved - timedelta(hours=1)).isoformat()}
    assert_error(
        await put_sync(api, {"tasks": [other_time]}), 422, "validation_error", {"tasks[0].run_at"}
    )


# ----------------------------------------------------------------------------------- deleting


async def test_delete_removed_deletes_unlisted_tasks_like_delete(
    api: Api, store: Store, org: tuple[UUID, str], other: tuple[UUID, Api]
) -> None:
    await synced(api, {"tasks": [NIGHTLY, WELCOME]})
    other_org, other_api = other
    await synced(other_api, {"tasks": [WELCOME]})
    theirs = await snapshot(store, other_org)

    result = await synced(api, {"tasks": [NIGHTLY], "delete_removed": True})
    assert result == changes(deleted=["welcome"], unchanged=["nightly"])
    assert set(await live(store, org[0])) == {"nightly"}
    assert await snapshot(store, other_org) == theirs


async def test_delete_removed_leaves_tasks_sync_never_managed(
    api: Api, store: Store, org: tuple[UUID, str]
) -> None:
    """A one-time task made through POST /tasks is not part of the document: it survives, and
    its pending execution still runs. Once a sync names a task, sync manages it."""
    made = await api.post("/tasks", json={"name": "adhoc", "url": TARGET, "delay": "2h"})
    assert made.status == 202
    adopted = await api.post("/tasks", json={"name": "nightly", "url": TARGET, "cron": "0 3 * * *"})
    assert adopted.status == 201
    await synced(api, {"tasks": [NIGHTLY]})

    result = await synced(api, {"tasks": [WELCOME], "delete_removed": True})
    assert result == changes(created=["welcome"], deleted=["nightly"])
    assert set(await live(store, org[0])) == {"adhoc", "welcome"}
    execution = await api.get(f"/executions/{made.body['data']['execution_id']}")
    assert execution.status == 200 and execution.body["data"]["status"] == "pending"


async def test_without_delete_removed_unlisted_tasks_stay(
    api: Api, store: Store, org: tuple[UUID, str]
) -> None:
    await synced(api, {"tasks": [NIGHTLY, WELCOME]})
    assert await synced(api, {"tasks": [NIGHTLY]}) == changes(unchanged=["nightly"])
    assert set(await live(store, org[0])) == {"nightly", "welcome"}


async def test_delete_removed_touches_only_the_kinds_given(
    api: Api, store: Store, org: tuple[UUID, str]
) -> None:
    await synced(api, {"tasks": [NIGHTLY, WELCOME]})
    assert await synced(api, {"delete_removed": True}) == changes()
    assert set(await live(store, org[0])) == {"nightly", "welcome"}
    assert await synced(api, {"tasks": [], "delete_removed": True}) == changes(
        deleted=["nightly", "welcome"]
    )
    assert await live(store, org[0]) == {}


# --------------------------------------------------------------------------- other organizations


async def test_another_orgs_tasks_of_the_same_name_are_untouched(
    api: Api, store: Store, org: tuple[UUID, str], other: tuple[UUID, Api]
) -> None:
    other_org, other_api = other
    await synced(other_api, {"tasks": [NIGHTLY]})
    theirs = await snapshot(store, other_org)
    assert await synced(api, {"tasks": [{**NIGHTLY, "cron": "0 4 * * *"}]}) == changes(
        created=["nightly"]
    )
    assert await synced(api, {"tasks": [{**NIGHTLY, "cron": "0 5 * * *"}]}) == changes(
        updated=["nightly"]
    )
    assert (await live(store, org[0]))["nightly"]["cron_expression"] == "0 5 * * *"
    assert await snapshot(store, other_org) == theirs


# ------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("payload", "fields"),
    [
        ({"tasks": "nope"}, {"tasks"}),
        ({"tasks": [NIGHTLY] * 1001}, {"tasks"}),
        ({"tasks": ["nightly"]}, {"tasks[0]"}),
        ({"tasks": [{"url": TARGET}]}, {"tasks[0].name"}),
        ({"tasks": [{**NIGHTLY, "name": ""}]}, {"tasks[0].name"}),
        ({"tasks": [NIGHTLY, WELCOME, {**WELCOME, "url": TARGET + "2"}]}, {"tasks[2].name"}),
        ({"tasks": [{"name": "x"}]}, {"tasks[0].url"}),
        ({"tasks": [WELCOME, {**NIGHTLY, "cron": "61 * * * *"}]}, {"tasks[1].cron"}),
        ({"tasks": [{**NIGHTLY, "timezone": "Mars/Base"}]}, {"tasks[0].timezone"}),
        ({"tasks": [{**WELCOME, "delay": "soon"}]}, {"tasks[0].delay"}),
        (
            {"tasks": [{**WELCOME, "delay": None, "run_at": "2001-01-01T00:00:00Z"}]},
            {"tasks[0].run_at"},
        ),
        ({"tasks": [{**NIGHTLY, "delay": "5m"}]}, {"tasks[0].cron", "tasks[0].delay"}),
        ({"tasks": [{**NIGHTLY, "timeout_ms": "slow"}]}, {"tasks[0].timeout_ms"}),
        ({"tasks": [{**NIGHTLY, "headers": {"Host": "x"}}]}, {"tasks[0].headers"}),
        (
            {"tasks": [{**NIGHTLY, "url": "nope"}, {**WELCOME, "method": 1}]},
            {"tasks[0].url", "tasks[1].method"},
        ),
        ({"tasks": [{**NIGHTLY, "name": "a\x00b"}]}, {"tasks[0].name"}),
        (
            {"tasks": [NIGHTLY], "monitors": [{"name": "m"}]},
            {"monitors[0].interval_seconds", "monitors[0].cron_expression"},
        ),
        (
            {"tasks": [NIGHTLY], "endpoints": [{"name": "e", "forward_urls": "x"}]},
            {"endpoints[0].forward_urls"},
        ),
        ({"tasks": [NIGHTLY], "monitors": "all"}, {"monitors"}),
        ({"task": [NIGHTLY]}, {"task"}),
        ({"tasks": [NIGHTLY], "delete_removed": "yes"}, {"delete_removed"}),
    ],
)
async def test_an_invalid_request_is_422_and_changes_nothing(
    api: Api, store: Store, org: tuple[UUID, str], payload: dict[str, Any], fields: set[str]
) -> None:
    await synced(api, {"tasks": [{"name": "kept", "url": TARGET, "cron": "0 1 * * *"}]})
    before = await snapshot(store, org[0])
    payload = {**payload, "delete_removed": payload.get("delete_removed", True)}
    assert_error(await put_sync(api, payload), 422, "validation_error", fields)
    assert await snapshot(store, org[0]) == before


async def test_one_invalid_item_rolls_back_the_valid_ones(
    api: Api, store: Store, org: tuple[UUID, str]
) -> None:
    await synced(api, {"tasks": [NIGHTLY, WELCOME]})
    before = await snapshot(store, org[0])
    declared = [
        {"name": "new", "url": TARGET, "cron": "0 6 * * *"},  # would be created
        {**NIGHTLY, "cron": "0 7 * * *"},  # would be updated
        {**WELCOME, "cron": "0 8 * * *"},  # a one-time task cannot become a cron task
    ]
    reply = await put_sync(api, {"tasks": declared, "delete_removed": True})
    error = assert_error(reply, 422, "validation_error", {"tasks[2].cron"})
    assert "cron" in error["details"]["tasks[2].cron"][0]
    assert await snapshot(store, org[0]) == before


@pytest.mark.parametrize(
    ("declared", "field"),
    [
        ({"name": "nightly", "delay": "5m"}, "tasks[0].delay"),
        ({"name": "nightly", "run_at": "2100-01-01T00:00:00Z"}, "tasks[0].run_at"),
        ({"name": "welcome", "cron": "0 9 * * *"}, "tasks[0].cron"),
    ],
)
async def test_an_existing_task_cannot_change_kind(
    api: Api, store: Store, org: tuple[UUID, str], declared: dict[str, Any], field: str
) -> None:
    await synced(api, {"tasks": [NIGHTLY, WELCOME]})
    before = await snapshot(store, org[0])
    reply = await put_sync(api, {"tasks": [declared]})
    assert_error(reply, 422, "validation_error", {field})
    assert await snapshot(store, org[0]) == before


async def test_an_ambiguous_name_is_refused(api: Api, store: Store, org: tuple[UUID, str]) -> None:
    for _ in range(2):
        assert (await api.post("/tasks", json={"name": "twin", "url": TARGET})).status == 202
    before = await snapshot(store, org[0])
    reply = await put_sync(api, {"tasks": [{"name": "twin", "url": TARGET}]})
    error = assert_error(reply, 422, "validation_error", {"tasks[0].name"})
    assert "2 tasks" in error["details"]["tasks[0].name"][0]
    assert await snapshot(store, org[0]) == before


async def test_a_blocked_url_is_url_not_allowed(
    api: Api, store: Store, org: tuple[UUID, str]
) -> None:
    declared = [NIGHTLY, {**WELCOME, "callback_url": "http://169.254.169.254/latest"}]
    reply = await put_sync(api, {"tasks": declared})
    assert_error(reply, 422, "url_not_allowed", {"tasks[1].callback_url"})
    assert await snapshot(store, org[0]) == {"tasks": [], "executions": []}


async def test_plan_limits_of_the_database_apply(store: Store, app: QuartTrio) -> None:
    org_id, key = await make_org(store, "Smallco", tier="free")
    free = Api(app, key)
    declared = {"tasks": [WELCOME, {**NIGHTLY, "cron": "*/5 * * * *"}]}
    for dry_run in (True, False):
        assert_error(await put_sync(free, declared, dry_run=dry_run), 422, "limit_exceeded")
    assert await snapshot(store, org_id) == {"tasks": [], "executions": []}


async def test_monitors_and_endpoints_may_be_empty(api: Api) -> None:
    reply = await put_sync(api, {"tasks": [NIGHTLY], "monitors": [], "endpoints": None})
    assert reply.status == 200, reply.body
    assert reply.body["data"]["monitors"] == {
        "created": [],
        "updated": [],
        "deleted": [],
        "unchanged": [],
    }


async def test_a_body_over_256_kib_is_payload_too_large(
    api: Api, store: Store, org: tuple[UUID, str]
) -> None:
    declared = [WELCOME, {**NIGHTLY, "body": "x" * (256 * KIB + 1)}]
    assert_error(
        await put_sync(api, {"tasks": declared}), 413, "payload_too_large", {"tasks[1].body"}
    )
    assert await snapshot(store, org[0]) == {"tasks": [], "executions": []}


async def test_a_bad_dry_run_flag_is_a_validation_error(api: Api) -> None:
    reply = await api.call("PUT", "/sync?dry_run=perhaps", json={"tasks": [NIGHTLY]})
    assert_error(reply, 422, "validation_error", {"dry_run"})


# ------------------------------------------------------------------------------------ dry run


async def test_a_dry_run_reports_what_a_real_run_does_and_writes_nothing(
    api: Api, store: Store, org: tuple[UUID, str]
) -> None:
    await synced(api, {"tasks": [NIGHTLY, WELCOME, {"name": "old", "url": TARGET}]})
    before = await snapshot(store, org[0])
    declared = {
        "tasks": [
            {**NIGHTLY, "cron": "0 4 * * *"},
            WELCOME,
            {"name": "fresh", "url": TARGET, "cron": "0 9 * * 1"},
        ],
        "delete_removed": True,
    }
    expected = changes(
        created=["fresh"], updated=["nightly"], deleted=["old"], unchanged=["welcome"]
    )
    assert await synced(api, declared, dry_run=True) == expected
    assert await snapshot(store, org[0]) == before
    assert await synced(api, declared) == expected
    assert set(await live(store, org[0])) == {"nightly", "welcome", "fresh"}


# ---------------------------------------------------------------------------------- concurrency


async def test_concurrent_syncs_create_a_new_name_once(
    api: Api, store: Store, org: tuple[UUID, str], database_url: str
) -> None:
    """Two syncs of the same new name at once: the second waits for the first (one sync per
    organization at a time) and finds the task it created."""
    declared = {"tasks": [{"name": "solo", "url": TARGET, "cron": "0 2 * * *"}]}
    results: list[dict[str, list[str]]] = []
    lock = "select pg_advisory_{}(hashtextextended('runlater:sync:' || $1::uuid::text, 0))"
    async with raw_connection(database_url) as conn:
        await sql(conn, lock.format("lock"), org[0])  # hold the sync lock: both will wait

        async def one() -> None:
            results.append(await synced(api, declared))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(one)
            nursery.start_soon(one)
            with trio.fail_after(30):
                while len(results) < 2:
                    waiting = await sql(
                        conn,
                        "select count(*) as n from pg_stat_activity where datname ="
                        " current_database() and wait_event = 'advisory'",
                    )
                    if waiting[0]["n"] == 2:
                        break
                    await trio.sleep(0.01)
            await sql(conn, lock.format("unlock"), org[0])
    assert sorted(results, key=json.dumps) == [
        changes(created=["solo"]),
        changes(unchanged=["solo"]),
    ]
    count = await store._run(
        fetchval, "select count(*) from tasks where organization_id = $1 and name = 'solo'", org[0]
    )
    assert count == 1


# ------------------------------------------------------------------------------ request size


def sync_request_of_size(size: int) -> bytes:
    """A valid sync request of exactly ``size`` bytes: 50 cron tasks with large bodies."""
    head, tail, count = b'{"tasks": [', b"]}", 50
    shells = [
        b'{"name": "t%d", "url": "%s", "cron": "0 3 * * *", "body": "%%s"}' % (i, TARGET.encode())
        for i in range(count)
    ]
    fixed = len(head) + len(tail) + (count - 1) + sum(len(s) - 2 for s in shells)
    filler, extra = divmod(size - fixed, count)
    parts = [s % (b"x" * (filler + (extra if i == 0 else 0))) for i, s in enumerate(shells)]
    raw = head + b",".join(parts) + tail
    assert len(raw) == size
    return raw


async def test_a_request_of_exactly_8_mib_is_accepted(api: Api) -> None:
    raw = sync_request_of_size(8 * MIB)
    result = await synced_raw(api, raw)
    assert len(result["created"]) == len(json.loads(raw)["tasks"]) == 50


async def test_a_request_over_8_mib_is_payload_too_large(
    api: Api, store: Store, org: tuple[UUID, str]
) -> None:
    reply = await api.call("PUT", "/sync", data=sync_request_of_size(8 * MIB + 1))
    error = assert_error(reply, 413, "payload_too_large")
    assert "8 MiB" in error["message"]
    assert await snapshot(store, org[0]) == {"tasks": [], "executions": []}


async def synced_raw(api: Api, raw: bytes) -> dict[str, list[str]]:
    reply = await api.call("PUT", "/sync", data=raw)
    assert reply.status == 200, reply.body
    return reply.body["data"]["tasks"]
