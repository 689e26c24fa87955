"""``POST /api/v1/tasks/batch`` (docs/api.md): up to 1,000 one-time tasks in one queue.

Through quart's test client into the real app, on a real Postgres clone; deliveries go to a real
local sink. The database is inspected directly to check what a batch wrote, and a store that
records every statement it sends proves the insert is one round trip.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from quart_trio import QuartTrio

from runlater.clock import ManualClock
from runlater.store.base import fetch, fetchval
from runlater.store.postgres import Store
from tests.helpers.api import Api, assert_error, make_app, near, parse_ts
from tests.helpers.factories import make_org
from tests.helpers.sink import serve_sink
from tests.integration.test_delivery_path import deliver_due

TARGET = "http://127.0.0.1:8080/hook"
KIB = 1024
MIB = 1024 * 1024


class _RecordingConnection:
    """An asyncpg connection that notes the SQL of every statement sent through it."""

    def __init__(self, conn: Any, sent: list[str]) -> None:
        self._conn, self._sent = conn, sent

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._conn, name)
        if name not in ("execute", "executemany", "fetch", "fetchrow", "fetchval"):
            return attribute

        async def send(sql: str, *args: Any, **kwargs: Any) -> Any:
            self._sent.append(sql)
            return await attribute(sql, *args, **kwargs)

        return send


class RecordingStore(Store):
    """The real store on the same pool, recording each statement its units send."""

    def __init__(self, store: Store) -> None:
        super().__init__(store._pool, store.dsn)
        self.sent: list[str] = []

    async def _run(self, unit: Any, *args: Any) -> Any:
        async def recorded(conn: Any, *unit_args: Any) -> Any:
            return await unit(_RecordingConnection(conn, self.sent), *unit_args)

        return await super()._run(recorded, *args)


async def rows(store: Store, sql: str, *args: Any) -> list[dict[str, Any]]:
    return await store._run(fetch, sql, *args)


async def count(store: Store, sql: str, *args: Any) -> int:
    return await store._run(fetchval, sql, *args)


def batch(**extra: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {"url": TARGET, "queue": "imports", "items": ["a", "b"]}
    payload.update(extra)
    return payload


def request_of_size(size: int, count: int = 40) -> bytes:
    """A valid batch request of exactly ``size`` bytes: ``count`` string items of (nearly)
    equal length."""
    head = b'{"url": "' + TARGET.encode() + b'", "queue": "big", "items": ['
    tail = b"]}"
    fixed = len(head) + len(tail) + (count - 1) + 2 * count
    filler, extra = divmod(size - fixed, count)
    parts = [b'"' + b"x" * (filler + (extra if i == 0 else 0)) + b'"' for i in range(count)]
    raw = head + b",".join(parts) + tail
    assert len(raw) == size
    return raw


# ----------------------------------------------------------------------------------- fixtures


@pytest.fixture
def recording(store: Store) -> RecordingStore:
    return RecordingStore(store)


@pytest.fixture
def app(recording: RecordingStore, clock: ManualClock) -> QuartTrio:
    return make_app(recording, clock)


@pytest.fixture
async def org(store: Store) -> tuple[UUID, str]:
    return await make_org(store, "Acme")


@pytest.fixture
def api(app: QuartTrio, org: tuple[UUID, str]) -> Api:
    return Api(app, org[1])


# ---------------------------------------------------------------------------- creating tasks


async def test_batch_of_1000_is_1000_tasks_and_executions_in_one_statement(
    api: Api, store: Store, recording: RecordingStore, org: tuple[UUID, str]
) -> None:
    items: list[Any] = [{"n": i, "note": "é"} if i % 2 else f"item {i}" for i in range(1000)]
    recording.sent.clear()
    before = datetime.now(UTC)
    reply = await api.post("/tasks/batch", json=batch(items=items, method="PUT"))
    assert reply.status == 201, reply.body
    assert set(reply.body) == {"data"}
    assert set(reply.body["data"]) == {"queue", "created", "scheduled_for", "items"}
    assert reply.body["data"]["queue"] == "imports"
    assert reply.body["data"]["created"] == 1000
    assert near(reply.body["data"]["scheduled_for"], before)

    writes = [s for s in recording.sent if "insert into" in s.lower()]
    inserts = [s for s in writes if "into tasks" in s or "into executions" in s]
    assert len(inserts) == 1, "tasks and executions must be inserted by one statement"

    written = await rows(
        store,
        """select t.id as task_id, e.id as execution_id,
                  t.body, t.queue, t.method, t.url, t.schedule_type, t.scheduled_at,
                  e.status, e.attempt, e.source, e.scheduled_for,
                  t.xmin::text as task_xact, e.xmin::text as execution_xact
           from tasks t join executions e on e.task_id = t.id
           where t.organization_id = $1
           order by e.queue_position, e.queue_seq""",
        org[0],
    )
    assert len(written) == 1000
    expected = [
        i if isinstance(i, str) else json.dumps(i, separators=(",", ":"), ensure_ascii=False)
        for i in items
    ]
    assert [r["body"] for r in written] == expected  # the queue holds them in item order
    # The answer names each item's task and execution, in input order.
    assert reply.body["data"]["items"] == [
        {"task_id": str(r["task_id"]), "execution_id": str(r["execution_id"])} for r in written
    ]
    scheduled = parse_ts(reply.body["data"]["scheduled_for"])
    for r in written:
        assert (r["queue"], r["method"], r["url"], r["schedule_type"]) == (
            "imports",
            "PUT",
            TARGET,
            "once",
        )
        assert (r["status"], r["attempt"], r["source"]) == ("pending", 1, "schedule")
        assert r["scheduled_at"] == r["scheduled_for"]
        assert abs(r["scheduled_for"] - scheduled) < timedelta(milliseconds=1)  # shown in ms
    # One transaction wrote all 2,000 rows (autocommit: one statement).
    assert len({r["task_xact"] for r in written} | {r["execution_xact"] for r in written}) == 1


async def test_batch_tasks_are_what_post_tasks_makes(
    api: Api, store: Store, org: tuple[UUID, str]
) -> None:
    shared = {
        "url": TARGET,
        "queue": "same",
        "headers": {"X-Trace": "1"},
        "timeout_ms": 5000,
        "retry_attempts": 2,
        "callback_url": "http://127.0.0.1:8080/cb",
        "delay": "1h",
    }
    single = await api.post("/tasks", json={**shared, "body": {"k": 1}})
    assert single.status == 202, single.body
    reply = await api.post("/tasks/batch", json={**shared, "items": [{"k": 1}]})
    assert reply.status == 201, reply.body

    listed = await api.get("/tasks?queue=same")
    assert listed.status == 200
    one, other = listed.body["data"]
    volatile = {"id", "badge_token", "inserted_at", "updated_at", "scheduled_at"}
    assert {k: v for k, v in one.items() if k not in volatile} == {
        k: v for k, v in other.items() if k not in volatile
    }
    assert one["body"] == '{"k":1}' and one["method"] == "POST" and one["name"] == f"POST {TARGET}"
    executions = await rows(
        store,
        "select priority, host, source, attempt, status, queue from executions"
        " where organization_id = $1",
        org[0],
    )
    assert len(executions) == 2 and executions[0] == executions[1]


async def test_delay_and_run_at_set_when_the_batch_is_due(api: Api, clock: ManualClock) -> None:
    before = datetime.now(UTC)
    delayed = await api.post("/tasks/batch", json=batch(delay="5m"))
    assert delayed.status == 201, delayed.body
    assert near(delayed.body["data"]["scheduled_for"], before + timedelta(minutes=5))

    when = (clock.now() + timedelta(days=1)).replace(microsecond=0)
    at = await api.post("/tasks/batch", json=batch(run_at=when.isoformat()))
    assert at.status == 201, at.body
    assert parse_ts(at.body["data"]["scheduled_for"]) == when


async def test_route_is_not_taken_by_task_ids(api: Api) -> None:
    assert (await api.post("/tasks/batch", json=batch())).status == 201
    assert_error(await api.get("/tasks/batch"), 404, "not_found")


async def test_tasks_belong_to_the_caller_only(api: Api, app: QuartTrio, store: Store) -> None:
    _, other_key = await make_org(store, "Globex")
    assert (await api.post("/tasks/batch", json=batch())).status == 201
    theirs = await Api(app, other_key).get("/tasks")
    assert theirs.status == 200 and theirs.body["data"] == []
    assert len((await api.get("/tasks")).body["data"]) == 2


async def test_a_repeated_idempotency_key_creates_one_batch(
    api: Api, store: Store, org: tuple[UUID, str]
) -> None:
    headers = {"Idempotency-Key": "batch-1"}
    first = await api.post("/tasks/batch", json=batch(), headers=headers)
    again = await api.post("/tasks/batch", json=batch(), headers=headers)
    assert first.status == again.status == 201
    assert first.body == again.body
    assert await count(store, "select count(*) from tasks where organization_id = $1", org[0]) == 2


# ------------------------------------------------------------------------------ bad requests


@pytest.mark.parametrize(
    ("payload", "fields"),
    [
        (batch(items=[]), {"items"}),
        (batch(items=["x"] * 1001), {"items"}),
        (batch(items="x"), {"items"}),
        ({"url": TARGET, "queue": "q"}, {"items"}),
        ({"url": TARGET, "items": ["x"]}, {"queue"}),
        (batch(queue=None), {"queue"}),
        (batch(queue=""), {"queue"}),
        (batch(cron="* * * * *"), {"cron"}),
        (batch(body="x"), {"body"}),
        ({"queue": "q", "items": ["x"]}, {"url"}),
        (batch(url="ftp://example.com/x"), {"url"}),
        (batch(method="FETCH"), {"method"}),
        (batch(timeout_ms=10), {"timeout_ms"}),
        (batch(delay="5m", run_at="2030-01-01T00:00:00Z"), {"delay", "run_at"}),
        (batch(items=["ok", "nul\x00"]), {"items[1]"}),
        (batch(items=[{"deep": ["nul\x00"]}]), {"items[0]"}),
    ],
)
async def test_invalid_batch_is_a_validation_error(
    api: Api, store: Store, org: tuple[UUID, str], payload: dict[str, Any], fields: set[str]
) -> None:
    assert_error(await api.post("/tasks/batch", json=payload), 422, "validation_error", fields)
    assert await count(store, "select count(*) from tasks where organization_id = $1", org[0]) == 0


async def test_1000_items_is_the_inclusive_limit(api: Api) -> None:
    reply = await api.post("/tasks/batch", json=batch(items=list(range(1000))))
    assert reply.status == 201 and reply.body["data"]["created"] == 1000


async def test_an_item_over_256_kib_is_payload_too_large(
    api: Api, store: Store, org: tuple[UUID, str]
) -> None:
    items = ["x" * (256 * KIB), "x" * (256 * KIB + 1), {"k": "x" * (256 * KIB)}]
    error = assert_error(
        await api.post("/tasks/batch", json=batch(items=items)),
        413,
        "payload_too_large",
        {"items[1]", "items[2]"},
    )
    assert "256 KiB" in error["message"]
    assert await count(store, "select count(*) from tasks where organization_id = $1", org[0]) == 0
    accepted = await api.post("/tasks/batch", json=batch(items=items[:1]))
    assert accepted.status == 201, accepted.body


@pytest.mark.parametrize(
    ("timing", "code"),
    [
        ({"delay": "5 minutes"}, "invalid_delay"),
        ({"delay": -1}, "invalid_delay"),
        ({"run_at": "tomorrow"}, "invalid_run_at"),
        ({"run_at": "2020-01-01T00:00:00Z"}, "invalid_run_at"),
    ],
)
async def test_bad_timing_is_a_400(api: Api, timing: dict[str, Any], code: str) -> None:
    assert_error(await api.post("/tasks/batch", json=batch(**timing)), 400, code)


async def test_a_blocked_url_is_url_not_allowed(
    api: Api, store: Store, org: tuple[UUID, str]
) -> None:
    metadata = batch(url="http://169.254.169.254/latest/meta-data")
    assert_error(await api.post("/tasks/batch", json=metadata), 422, "url_not_allowed", {"url"})
    callback = batch(callback_url="http://169.254.169.254/cb")
    assert_error(
        await api.post("/tasks/batch", json=callback), 422, "url_not_allowed", {"callback_url"}
    )
    assert await count(store, "select count(*) from tasks where organization_id = $1", org[0]) == 0


async def test_private_url_is_refused_when_private_targets_are_not_allowed(
    store: Store, clock: ManualClock, org: tuple[UUID, str]
) -> None:
    strict = Api(make_app(store, clock, allow_private=False), org[1])
    assert_error(await strict.post("/tasks/batch", json=batch()), 422, "url_not_allowed", {"url"})


async def test_plan_limit_refuses_the_whole_batch(store: Store, app: QuartTrio) -> None:
    org_id, key = await make_org(store, "Smallco", tier="free")
    await store._run(
        fetchval,
        "insert into usage_counters (organization_id, month, executions)"
        " values ($1, usage_month(now()), 9999)",
        org_id,
    )
    reply = await Api(app, key).post("/tasks/batch", json=batch(items=["a", "b"]))
    assert_error(reply, 422, "limit_exceeded")
    assert await count(store, "select count(*) from tasks where organization_id = $1", org_id) == 0


# ------------------------------------------------------------------------------ request size


async def test_a_request_of_exactly_8_mib_is_accepted(
    api: Api, store: Store, org: tuple[UUID, str]
) -> None:
    raw = request_of_size(8 * MIB)
    reply = await api.post("/tasks/batch", data=raw)
    assert reply.status == 201, reply.body
    created = reply.body["data"]["created"]
    assert created == len(json.loads(raw)["items"]) == 40
    total = await count(
        store, "select sum(length(body)) from tasks where organization_id = $1", org[0]
    )
    assert total == sum(len(i) for i in json.loads(raw)["items"])


async def test_a_request_over_8_mib_is_payload_too_large(
    api: Api, store: Store, org: tuple[UUID, str]
) -> None:
    error = assert_error(
        await api.post("/tasks/batch", data=request_of_size(8 * MIB + 1)), 413, "payload_too_large"
    )
    assert "8 MiB" in error["message"]
    assert await count(store, "select count(*) from tasks where organization_id = $1", org[0]) == 0


def task_request_of_size(size: int) -> bytes:
    prefix, suffix = b'{"url": "' + TARGET.encode() + b'", "body": "', b'"}'
    return prefix + b"x" * (size - len(prefix) - len(suffix)) + suffix


async def test_other_routes_keep_the_256_kib_limit(api: Api) -> None:
    over = task_request_of_size(256 * KIB + 1)
    error = assert_error(await api.post("/tasks", data=over), 413, "payload_too_large")
    assert "256 KiB" in error["message"]
    assert (await api.post("/tasks", data=task_request_of_size(256 * KIB))).status == 202
    # The 8 MiB allowance is for POST /tasks/batch and PUT /sync only, not other methods.
    assert_error(await api.call("PUT", "/tasks/batch", data=over), 413, "payload_too_large")


# ---------------------------------------------------------------------------------- delivery


async def test_batch_items_are_delivered_in_order(api: Api, store: Store) -> None:
    async with serve_sink() as sink:
        items = [{"step": 1}, "two", {"step": 3}]
        reply = await api.post(
            "/tasks/batch",
            json={"url": f"{sink.url}/batch", "queue": "ordered", "items": items},
        )
        assert reply.status == 201, reply.body
        for _ in range(10):  # a queue runs one at a time: one delivery per worker pass
            if len(sink.requests) == 3:
                break
            await deliver_due(store)
        received = await sink.wait_for(3)
    assert [r.body for r in received] == [b'{"step":1}', b"two", b'{"step":3}']
    assert all(r.method == "POST" and r.path == "/batch" for r in received)
    assert len({r.headers["x-runlater-task-id"] for r in received}) == 3
    listed = await api.get("/tasks?queue=ordered")
    assert {t["last_execution_status"] for t in listed.body["data"]} == {"success"}
