"""Worker and PoolManager against real Postgres and a real local HTTP sink."""

from __future__ import annotations

import httpx
import trio

from runlater.actors.messages import Wake
from runlater.actors.pool import PoolManager, Recorder
from runlater.actors.worker import Worker, outcome_of
from runlater.config import Settings
from runlater.delivery.client import Attempt, Deliverer
from runlater.delivery.transport import TrioTransport
from runlater.store.postgres import Store
from runlater.store.records import Outcome
from tests.helpers.factories import make_org, once_task
from tests.helpers.faulty import FaultyStore
from tests.helpers.sink import serve_sink


def deliverer(http: httpx.AsyncBaseTransport) -> Deliverer:
    return Deliverer(http)


async def test_due_once_task_is_delivered_and_recorded(store: Store) -> None:
    org, _ = await make_org(store)
    async with serve_sink() as sink, TrioTransport(allow_private=True) as http:
        row = await store.insert_task(org, once_task(sink.url + "/hook", body='{"a":1}'), 0)
        worker = Worker(store, deliverer(http), node="n1", lease_margin_s=5)
        result = await worker.run_once(limit=10)
        assert (result.claimed, result.succeeded, result.recorded) == (1, 1, 1)
        assert len(sink.requests) == 1
        got = sink.requests[0]
        assert got.method == "POST" and got.path == "/hook" and got.body == b'{"a":1}'
        assert got.headers["x-runlater-execution-id"] == str(row["execution_id"])
        assert got.headers["webhook-id"] == str(row["execution_id"])
        execution = await store.get_execution(org, row["execution_id"])
        assert execution["status"] == "success"
        assert execution["status_code"] == 200
        assert execution["duration_ms"] >= 0
        assert execution["response_body"] == "ok"
        assert execution["finished_at"] is not None


async def test_not_yet_due_is_not_claimed(store: Store) -> None:
    org, _ = await make_org(store)
    async with TrioTransport(allow_private=True) as http:
        await store.insert_task(org, once_task("http://127.0.0.1:9/x"), 3600)
        result = await Worker(store, deliverer(http), node="n1", lease_margin_s=5).run_once(5)
        assert result.claimed == 0
        _, due_in = await store.claim(1, "n1", 5)
        assert due_in is not None and 3500 < due_in <= 3600


async def test_failure_schedules_retry_with_attempt_plus_one(store: Store) -> None:
    org, _ = await make_org(store)
    async with serve_sink() as sink, TrioTransport(allow_private=True) as http:
        row = await store.insert_task(org, once_task(sink.url + "/status/503", retry_attempts=2), 0)
        result = await Worker(store, deliverer(http), node="n1", lease_margin_s=5).run_once(5)
        assert result.failed == 1
        executions = await store.list_task_executions(
            org, row["id"], status=None, limit=10, offset=0
        )
        by_attempt = {e["attempt"]: e for e in executions}
        assert by_attempt[1]["status"] == "failed" and by_attempt[1]["status_code"] == 503
        assert by_attempt[2]["status"] == "pending"
        retry = await store.get_execution(org, by_attempt[2]["id"])
        assert retry["root_execution_id"] == row["execution_id"]
        assert (retry["scheduled_for"] - by_attempt[1]["finished_at"]).total_seconds() >= 7


async def test_4xx_is_not_retried(store: Store) -> None:
    org, _ = await make_org(store)
    async with serve_sink() as sink, TrioTransport(allow_private=True) as http:
        row = await store.insert_task(org, once_task(sink.url + "/status/404", retry_attempts=3), 0)
        await Worker(store, deliverer(http), node="n1", lease_margin_s=5).run_once(5)
        executions = await store.list_task_executions(
            org, row["id"], status=None, limit=10, offset=0
        )
        assert [e["status"] for e in executions] == ["failed"]


async def test_pool_manager_delivers_a_burst_within_its_worker_bound(store: Store) -> None:
    org, _ = await make_org(store)
    settings = Settings(
        min_workers=1, max_workers=8, poll_interval_s=0.05, allow_private_targets=True
    )
    async with serve_sink() as sink, TrioTransport(allow_private=True) as http:
        for i in range(30):
            await store.insert_task(org, once_task(f"{sink.url}/n/{i}"), 0)
        send, recv = trio.open_memory_channel[Wake](16)
        pool = PoolManager(
            store, deliverer(http), settings, node="n1", mailbox=recv, wake=send.clone()
        )
        peak = 0
        async with trio.open_nursery() as nursery:
            await nursery.start(pool.run)
            with trio.fail_after(10):
                # Done when the database holds no pending or running execution: every claim
                # recorded. (Nothing claimable is not enough: a committed claim's rows are
                # neither claimable nor yet in the pool's hands until its call returns.)
                while set(await store.execution_counts()) & {"pending", "running"}:
                    peak = max(peak, pool.workers)
                    await trio.sleep(0.01)
            nursery.cancel_scope.cancel()
        assert sorted(r.path for r in sink.requests) == sorted(f"/n/{i}" for i in range(30))
        assert 1 < peak <= settings.max_workers  # measured while it ran, not after


async def test_the_recorder_writes_what_queued_meanwhile_in_one_batch(store: Store) -> None:
    """Group commit: outcomes that queued while the recorder was busy are written together,
    one statement for all of them, each fenced by its own lease."""
    org, _ = await make_org(store)
    for i in range(30):
        await store.insert_task(org, once_task(f"http://127.0.0.1:9/n/{i}"), 0)
    claimed, _ = await store.claim(30, "n1", 5)
    assert len(claimed) == 30
    counting = FaultyStore(store)  # no fault: it counts the calls
    send, recv = trio.open_memory_channel[Outcome](30)
    for c in claimed:
        attempt = Attempt()
        attempt.status, attempt.status_code, attempt.response_body = "success", 200, ""
        send.send_nowait(outcome_of(c, attempt))
    send.close()
    unrecorded = {c.id: c.lease_token for c in claimed}
    await Recorder(counting, recv, unrecorded).run()
    assert counting.calls == {"complete": 1}
    assert unrecorded == {}
    for c in claimed:
        assert (await store.get_execution(org, c.id))["status"] == "success"


async def test_pool_grows_with_work_and_idle_workers_exit_down_to_min(store: Store) -> None:
    """Workers are spawned for claimed work up to max_workers and exit after worker_idle_s,
    never below min_workers."""
    org, _ = await make_org(store)
    settings = Settings(
        min_workers=1,
        max_workers=6,
        poll_interval_s=0.05,
        worker_idle_s=0.2,
        allow_private_targets=True,
    )
    async with serve_sink() as sink, TrioTransport(allow_private=True) as http:
        for i in range(12):
            await store.insert_task(org, once_task(f"{sink.url}/slow/300?{i}"), 0)
        send, recv = trio.open_memory_channel(16)
        pool = PoolManager(
            store, deliverer(http), settings, node="n1", mailbox=recv, wake=send.clone()
        )
        peak = 0
        async with trio.open_nursery() as nursery:
            await nursery.start(pool.run)
            assert pool.workers == 1
            with trio.fail_after(10):
                while len(sink.requests) < 12:
                    peak = max(peak, pool.workers)
                    await trio.sleep(0.01)
                while pool.workers > settings.min_workers:
                    await trio.sleep(0.05)
            await trio.sleep(0.5)  # more than worker_idle_s: the last one stays
            settled = pool.workers
            nursery.cancel_scope.cancel()
        assert peak == settings.max_workers
        assert settled == settings.min_workers
