"""Named queues against real Postgres: strict FIFO, at most one running execution per
organization's queue, pause/resume, and ``/api/v1/queues``.

Claims go through the engine's own statement (``Store.claim``) or a Worker's ``run_once``;
deliveries are real HTTP requests to a local sink. Database times are moved with plain SQL on
another connection (a retry made due, a lease expired), never by waiting.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import pytest
import trio
import trio.lowlevel
import trio_asyncio
from quart_trio import QuartTrio

from runlater.actors.listener import Listener
from runlater.actors.pool import PoolManager
from runlater.actors.worker import Worker
from runlater.config import Settings
from runlater.delivery.client import Deliverer
from runlater.delivery.transport import TrioTransport
from runlater.errors import Conflict
from runlater.store.base import fetchval
from runlater.store.migrate import apply_migrations, available
from runlater.store.postgres import Store
from runlater.store.queries import Q
from runlater.store.records import ClaimedExecution, CronAdvance, Outcome
from tests.conftest import _admin, with_database
from tests.helpers.api import Api, assert_error
from tests.helpers.db import raw_connection, sql
from tests.helpers.factories import cron_task, make_org, once_task
from tests.helpers.sink import serve_sink

URL = "http://127.0.0.1:9/x"  # claimed, never delivered
TARGET = "http://127.0.0.1:8080/hook"  # what the API accepts (loopback allowed in tests)
FAR_FUTURE = "2999-01-01T00:00:00+00:00"


# ------------------------------------------------------------------------------------ helpers


async def enqueue(store: Store, org: UUID, queue: str | None, url: str = URL, **extra: Any) -> UUID:
    """A one-time task due now in ``queue``; returns its execution id."""
    row = await store.insert_task(org, once_task(url, queue=queue, **extra), 0)
    return row["execution_id"]


async def claim(store: Store, limit: int = 50, node: str = "n1") -> list[ClaimedExecution]:
    claimed, _ = await store.claim(limit, node, 30)
    return claimed


async def succeed(store: Store, claimed: list[ClaimedExecution]) -> None:
    outcomes = [Outcome(c.id, c.lease_token, "success", 200, 1, "ok", None) for c in claimed]
    completed, _ = await store.complete(outcomes)
    assert completed == len(claimed)


async def db(dsn: str, query: str, *args: Any) -> list[dict[str, Any]]:
    async with raw_connection(dsn) as conn:
        return await sql(conn, query, *args)


async def make_due(dsn: str, execution_id: UUID) -> None:
    """Move a pending execution's time into the past (as if its retry delay had passed)."""
    rows = await db(
        dsn,
        "update executions set scheduled_for = now() - interval '1 s' "
        "where id = $1 and status = 'pending' returning id",
        execution_id,
    )
    assert len(rows) == 1


async def expire_lease(dsn: str, execution_id: UUID) -> None:
    rows = await db(
        dsn,
        "update executions set lease_expires_at = now() - interval '1 s' "
        "where id = $1 and status = 'running' returning id",
        execution_id,
    )
    assert len(rows) == 1


def deliverer(http: httpx.AsyncBaseTransport) -> Deliverer:
    return Deliverer(http)


# ---------------------------------------------------------------------- strict FIFO, one at a time


async def test_strict_fifo_a_waiting_retry_holds_back_later_items(
    store: Store, database_url: str
) -> None:
    """A, B, C in one queue; A fails and its retry is scheduled seconds later. With ten free
    slots, B and C are still not claimed, and nothing is reported due before the retry's time;
    once the retry is due it runs alone, then B, then C — one per pass, in order."""
    org, _ = await make_org(store)
    async with serve_sink() as sink, TrioTransport(allow_private=True) as http:
        a = await enqueue(store, org, "q", sink.url + "/status/503?A", retry_attempts=1)
        await enqueue(store, org, "q", sink.url + "/B")
        await enqueue(store, org, "q", sink.url + "/C")
        worker = Worker(store, deliverer(http), node="n1", lease_margin_s=5)

        first = await worker.run_once(10)
        assert (first.claimed, first.failed) == (1, 1)
        [retry] = await db(
            database_url,
            "select id, extract(epoch from scheduled_for - now())::float8 as in_s from executions "
            "where root_execution_id = $1 and status = 'pending'",
            a,
        )
        assert retry["in_s"] > 5
        assert (await worker.run_once(10)).claimed == 0
        claimed, due_in = await store.claim(10, "n1", 5)
        assert claimed == []
        assert due_in is not None and abs(due_in - retry["in_s"]) < 2  # the retry, not B
        assert await store.count_claimable() == 0

        await make_due(database_url, retry["id"])
        for expected in ("/status/503?A", "/B", "/C"):
            result = await worker.run_once(10)
            assert result.claimed == 1, expected
            assert sink.requests[-1].path == expected
        assert (await worker.run_once(10)).claimed == 0
    assert [r.path for r in sink.requests] == ["/status/503?A", "/status/503?A", "/B", "/C"]


async def test_one_running_per_queue_under_concurrent_claimers(
    store: Store, database_url: str
) -> None:
    """Two queues of six items and six unqueued rows. Each round eight claimers race with a
    limit of 50 each: exactly one item of each queue is handed out — its head, in FIFO order —
    while the unqueued rows all go in the first round, in parallel with the queues. Then the
    round's work completes. No queue ever has two running rows."""
    org, _ = await make_org(store)
    order: dict[str, list[UUID]] = {"q1": [], "q2": []}
    for _ in range(6):
        for queue in order:
            order[queue].append(await enqueue(store, org, queue))
    plain = {await enqueue(store, org, None) for _ in range(6)}
    queue_of = {i: q for q, ids in order.items() for i in ids}

    for round_no in range(7):
        got: list[ClaimedExecution] = []

        async def claimer(node: str, into: list[ClaimedExecution] = got) -> None:
            into.extend(await claim(store, 50, node))

        async with trio.open_nursery() as nursery:
            for i in range(8):
                nursery.start_soon(claimer, f"node-{i}")
        ids = [c.id for c in got]
        assert len(ids) == len(set(ids))
        running = await db(
            database_url,
            "select queue, count(*) as n from executions where status = 'running' "
            "and queue is not null group by queue",
        )
        assert all(r["n"] == 1 for r in running), running
        claimed_queued = {queue_of[i]: i for i in ids if i in queue_of}
        expected = {q: ids_[round_no] for q, ids_ in order.items() if round_no < 6}
        assert claimed_queued == expected, round_no
        assert {i for i in ids if i not in queue_of} == (plain if round_no == 0 else set())
        await succeed(store, got)


async def test_many_claimers_and_completions_never_run_two_of_a_queue(
    store: Store, database_url: str
) -> None:
    """A stress race: 4 queues of 15 items, 6 claimers looping claim → complete concurrently
    until everything is done. Every item runs once, each queue in FIFO order, and the unique
    index on running queue rows (a second delivery would violate it) is never hit."""
    org, _ = await make_org(store)
    order: dict[str, list[UUID]] = {f"q{n}": [] for n in range(4)}
    for _ in range(15):
        for queue in order:
            order[queue].append(await enqueue(store, org, queue))
    ran: list[UUID] = []

    async def claimer(node: str) -> None:
        idle = 0
        while idle < 20:
            batch = await claim(store, 10, node)
            ran.extend(c.id for c in batch)
            if batch:
                idle = 0
                await succeed(store, batch)
            else:
                idle += 1
                await trio.lowlevel.checkpoint()

    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            for i in range(6):
                nursery.start_soon(claimer, f"node-{i}")
    assert sorted(ran) == sorted(i for ids in order.values() for i in ids)
    position = {i: n for n, i in enumerate(ran)}
    for ids in order.values():
        assert [position[i] for i in ids] == sorted(position[i] for i in ids)
    finished = await db(
        database_url, "select count(*) as n from executions where status = 'success'"
    )
    assert finished[0]["n"] == 60


async def test_the_database_refuses_a_second_running_row_in_a_queue(store: Store) -> None:
    """The last line of defence: even a write that bypasses the claim cannot make a second row
    of one queue running (unique index), while rows of another queue or no queue can."""
    org, _ = await make_org(store)
    first = await enqueue(store, org, "q")
    second = await enqueue(store, org, "q")
    [claimed] = await claim(store)
    assert claimed.id == first

    async def start(execution_id: UUID) -> None:
        await store._run(
            lambda conn: conn.execute(
                "update executions set status = 'running', started_at = now(), "
                "lease_token = gen_random_uuid(), lease_expires_at = now() + interval '1 m' "
                "where id = $1",
                execution_id,
            )
        )

    with pytest.raises(Conflict):
        await start(second)
    await start(await enqueue(store, org, "other"))
    await start(await enqueue(store, org, None))


async def test_a_locked_queue_row_is_skipped_not_waited_for(
    store: Store, database_url: str
) -> None:
    """The claim takes the queue row with SKIP LOCKED: while another transaction holds it (a
    concurrent claim of that queue), claims go on with everything else instead of waiting,
    and the queue's head runs once the row is free."""
    org, _ = await make_org(store)
    head = await enqueue(store, org, "q")
    plain = await enqueue(store, org, None)
    async with raw_connection(database_url) as conn:
        tx = conn.transaction()
        await trio_asyncio.aio_as_trio(tx.start)()
        await trio_asyncio.aio_as_trio(conn.execute)(
            "select 1 from queues where name = 'q' for update"
        )
        with trio.fail_after(5):
            assert [c.id for c in await claim(store)] == [plain]
        await trio_asyncio.aio_as_trio(tx.rollback)()
    assert [c.id for c in await claim(store)] == [head]


async def test_same_name_in_two_organizations_is_two_queues(store: Store) -> None:
    """Organization B's queue "q" runs while A's "q" has a running row; A's second item waits."""
    org_a, _ = await make_org(store, "Acme")
    org_b, _ = await make_org(store, "Globex")
    a1 = await enqueue(store, org_a, "q")
    a2 = await enqueue(store, org_a, "q")
    b1 = await enqueue(store, org_b, "q")
    assert {c.id for c in await claim(store)} == {a1, b1}
    assert await claim(store) == []
    assert await store.count_claimable() == 0
    a2_row = await store.get_execution(org_a, a2)
    assert a2_row["status"] == "pending"


async def test_queue_heads_and_unqueued_rows_share_the_limit(store: Store) -> None:
    """One claim never hands out more than its limit, heads and unqueued rows together, best
    priority first (Pro before Free)."""
    pro, _ = await make_org(store, "Prolab", tier="pro")
    free, _ = await make_org(store, "Freebie", tier="free")
    free_rows = [await enqueue(store, free, None) for _ in range(3)]
    pro_heads = [await enqueue(store, pro, f"q{n}") for n in range(2)]
    await enqueue(store, pro, "q0")
    got = [c.id for c in await claim(store, 3)]
    assert len(got) == 3
    assert set(pro_heads) <= set(got)
    assert set(got) - set(pro_heads) <= set(free_rows)


# ------------------------------------------------------------------- what the pool may sleep on


async def test_blocked_items_are_not_reported_due(store: Store) -> None:
    """The pool sleeps for what ``claim`` reports as the next due time; an item that cannot be
    claimed (behind a running head, in a paused queue) must not be reported, or the pool spins.
    A due head is reported (and counted once per queue)."""
    org, _ = await make_org(store)
    for _ in range(3):
        await enqueue(store, org, "busy")
    [running] = await claim(store)
    for _ in range(2):
        await enqueue(store, org, "held")
    await store.set_queue_paused(org, "held", True)

    claimed, due_in = await store.claim(10, "n1", 5)
    assert claimed == [] and due_in is None
    assert await store.count_claimable() == 0

    await store.set_queue_paused(org, "held", False)
    assert await store.count_claimable() == 1  # the head of "held" only
    due_in = await store._run(fetchval, Q.next_due_in_s)
    assert due_in is not None and due_in <= 0  # ... and it is due now
    await succeed(store, [running])
    assert await store.count_claimable() == 2  # and now the next of "busy"
    assert len(await claim(store)) == 2  # one per queue
    claimed, due_in = await store.claim(10, "n1", 5)
    assert claimed == [] and due_in is None  # the rest wait behind the two running heads


async def test_a_head_due_later_is_reported_at_its_time(store: Store) -> None:
    """A queue whose head is not yet due (a later one-time task first in line) reports the
    head's time — and not the later rows', which cannot overtake it."""
    org, _ = await make_org(store)
    row = await store.insert_task(org, once_task(URL, queue="q"), 600)
    assert row["execution_id"]
    claimed, due_in = await store.claim(10, "n1", 5)
    assert claimed == [] and due_in is not None and 590 < due_in <= 600
    assert await store.count_claimable() == 0


async def test_a_head_whose_host_backs_off_holds_its_queue(store: Store, database_url: str) -> None:
    """Per-host backoff still applies to a queue's head, and the items behind it (to another
    host) wait: nothing overtakes the head. The pool sleeps until the backoff ends."""
    org, _ = await make_org(store)
    await enqueue(store, org, "q", "http://slow.example/x")
    await enqueue(store, org, "q", "http://fine.example/x")
    await db(
        database_url,
        "insert into host_backoffs (organization_id, host, failures, until) "
        "values ($1, 'slow.example', 5, now() + interval '60 s')",
        org,
    )
    claimed, due_in = await store.claim(10, "n1", 5)
    assert claimed == []
    assert due_in is not None and 50 < due_in <= 60
    assert await store.count_claimable() == 0


# ---------------------------------------------------------------------------- pause and resume


async def test_pause_stops_claims_and_resume_restarts_them(store: Store) -> None:
    """Paused: nothing of the queue is claimed (a running one may finish), pending rows stay
    pending and are counted; resumed: the head is claimed again, in order."""
    org, _ = await make_org(store)
    first = await enqueue(store, org, "q")
    second = await enqueue(store, org, "q")
    [running] = await claim(store)
    assert running.id == first
    assert await store.set_queue_paused(org, "q", True) == {
        "name": "q",
        "paused": True,
        "notified": 0,
    }
    await succeed(store, [running])  # the running one finishes
    assert await claim(store) == []
    assert await queue_counts(store, org) == [
        {"name": "q", "paused": True, "pending": 1, "running": 0}
    ]
    assert (await store.get_execution(org, second))["status"] == "pending"
    resumed = await store.set_queue_paused(org, "q", False)
    assert resumed == {"name": "q", "paused": False, "notified": 1}
    assert [c.id for c in await claim(store)] == [second]
    assert await queue_counts(store, org) == [
        {"name": "q", "paused": False, "pending": 0, "running": 1}
    ]


async def queue_counts(store: Store, org: UUID) -> list[dict[str, Any]]:
    """list_queues without the oldest due time (a moment the test does not fix)."""
    return [
        {k: q[k] for k in ("name", "paused", "pending", "running")}
        for q in await store.list_queues(org)
    ]


class ObservedStore:
    """The real store; records what each ``claim`` answered and whether one is in flight, so
    a test can tell when the pool has looked at the database and gone to sleep."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.claims: list[tuple[int, float | None]] = []
        self.in_flight = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def claim(
        self, limit: int, node: str, lease_margin_s: float
    ) -> tuple[list[ClaimedExecution], float | None]:
        self.in_flight += 1
        try:
            batch, due_in = await self._store.claim(limit, node, lease_margin_s)
        finally:
            self.in_flight -= 1
        self.claims.append((len(batch), due_in))
        return batch, due_in


async def pool_asleep(observed: ObservedStore, mailbox: trio.MemoryReceiveChannel[Any]) -> None:
    """Until the pool has claimed at least once and now waits on its mailbox: every task is
    blocked, no claim is in flight and no hint is queued."""
    with trio.fail_after(10):
        while True:
            await trio.testing.wait_all_tasks_blocked()
            idle = not observed.in_flight and not mailbox.statistics().current_buffer_used
            if observed.claims and idle:
                return
            await trio.sleep(0.01)


async def test_resume_and_finished_heads_wake_the_pool(store: Store) -> None:
    """A pool polling only every 60 s, with the Listener routing NOTIFY to it: a paused queue
    of three items is not reported due (the pool sleeps the full poll); resuming wakes it, and
    each finished head wakes it for the next item — all three arrive in order within seconds."""
    org, _ = await make_org(store)
    async with serve_sink() as sink, TrioTransport(allow_private=True) as http:
        for name in ("one", "two", "three"):
            await enqueue(store, org, "q", f"{sink.url}/{name}")
        await store.set_queue_paused(org, "q", True)
        observed = ObservedStore(store)
        send, recv = trio.open_memory_channel[Any](16)
        settings = Settings(
            min_workers=1, max_workers=4, poll_interval_s=60, allow_private_targets=True
        )
        pool = PoolManager(
            observed,
            deliverer(http),
            settings,
            node="n1",
            mailbox=recv,
            wake=send.clone(),
        )
        listener = Listener(store.dsn, {"runlater_executions": [send.clone()]})
        async with trio.open_nursery() as nursery:
            nursery.start_soon(listener.run)
            with trio.fail_after(10):
                await listener.connected.wait()
            await nursery.start(pool.run)
            await pool_asleep(observed, recv)
            assert observed.claims[-1] == (0, None)  # nothing due: sleep the whole poll
            await store.set_queue_paused(org, "q", False)
            await sink.wait_for(3, timeout_s=10)
            nursery.cancel_scope.cancel()
    assert [r.path for r in sink.requests] == ["/one", "/two", "/three"]


# ------------------------------------------------------------------- rescue, cron, queue changes


async def test_a_rescued_head_keeps_its_place(store: Store, database_url: str) -> None:
    """The node running a queue's head dies: after its lease expires and is rescued, the head
    runs again before the rows behind it."""
    org, _ = await make_org(store)
    head = await enqueue(store, org, "q")
    behind = await enqueue(store, org, "q")
    [claimed] = await claim(store, node="dead-node")
    assert claimed.id == head
    assert await claim(store) == []
    await expire_lease(database_url, head)
    assert (await store.rescue_expired()).requeued == 1
    [again] = await claim(store, node="n2")
    assert again.id == head and again.lease_token != claimed.lease_token
    await succeed(store, [again])
    assert [c.id for c in await claim(store)] == [behind]


async def test_a_manual_retry_takes_its_chains_place_but_waits_for_the_running_item(
    store: Store,
) -> None:
    """Retrying a failed item by hand files the retry at the chain's original place: it goes
    before the items queued after it, yet not while another item of the queue runs (although
    it is now first in line)."""
    org, _ = await make_org(store)
    failed = await enqueue(store, org, "q")
    [first] = await claim(store)
    await store.complete([Outcome(first.id, first.lease_token, "failed", 500, 1, "no", "boom")])
    b = await enqueue(store, org, "q")
    c = await enqueue(store, org, "q")
    [running] = await claim(store)
    assert running.id == b
    retry = await store.retry_execution(org, failed)
    claimed, due_in = await store.claim(10, "n1", 5)
    assert claimed == [] and due_in is None
    assert await store.count_claimable() == 0
    await succeed(store, [running])
    assert [x.id for x in await claim(store)] == [retry["id"]]
    assert (await store.get_execution(org, c))["status"] == "pending"


async def test_handed_back_head_keeps_its_place(store: Store) -> None:
    """A node shutting down releases its lease: the head is first in line again."""
    org, _ = await make_org(store)
    head = await enqueue(store, org, "q")
    await enqueue(store, org, "q")
    [claimed] = await claim(store)
    assert await store.release_leases([(claimed.id, claimed.lease_token)]) == 1
    assert [c.id for c in await claim(store)] == [head]


async def test_cron_runs_in_a_queue_obey_the_same_rules(store: Store, database_url: str) -> None:
    """A cron task's runs and a one-time task share queue "q": one at a time, by scheduled time,
    however the runs were created (the scheduler's statement, a manual trigger)."""
    org, _ = await make_org(store)
    cron = await store.insert_task(org, cron_task(URL, "* * * * *", FAR_FUTURE, queue="q"), None)
    now = datetime.now(UTC)
    runs = ((now - timedelta(minutes=3), "pending"), (now - timedelta(minutes=1), "pending"))
    old_next = datetime.fromisoformat(FAR_FUTURE)
    result = await store.advance_cron(
        [CronAdvance(cron["id"], old_next, old_next + timedelta(minutes=1), runs)]
    )
    assert result.created == 2
    once = await store.insert_task(
        org, once_task(URL, queue="q", scheduled_at=(now - timedelta(minutes=2)).isoformat()), None
    )
    triggered = await store.trigger_task(org, cron["id"])
    scheduled = await db(
        database_url,
        "select id from executions where task_id = $1 and source = 'schedule' "
        "order by scheduled_for",
        cron["id"],
    )
    expected = [scheduled[0]["id"], once["execution_id"], scheduled[1]["id"], triggered["id"]]
    ran = []
    for _ in expected:
        batch = await claim(store)
        assert len(batch) == 1
        ran.append(batch[0].id)
        await succeed(store, batch)
    assert ran == expected
    assert await claim(store) == []


async def test_changing_a_tasks_queue_moves_its_pending_executions(
    store: Store, database_url: str
) -> None:
    """PATCH queue: the task's pending executions move to the new queue (keeping their place
    by time), the running one finishes where it started; queue null makes them unqueued."""
    org, _ = await make_org(store)
    cron = await store.insert_task(org, cron_task(URL, "* * * * *", FAR_FUTURE, queue="a"), None)
    first = (await store.trigger_task(org, cron["id"]))["id"]
    second = (await store.trigger_task(org, cron["id"]))["id"]
    [running] = await claim(store)
    assert running.id == first
    await store.update_task(org, cron["id"], lambda _current: {"queue": "b"})
    by_name = {q["name"]: q for q in await store.list_queues(org)}
    assert (by_name["a"]["running"], by_name["a"]["pending"]) == (1, 0)
    assert (by_name["b"]["running"], by_name["b"]["pending"]) == (0, 1)
    assert [c.id for c in await claim(store)] == [second]  # "b" is free although "a" runs
    third = (await store.trigger_task(org, cron["id"]))["id"]
    fourth = (await store.trigger_task(org, cron["id"]))["id"]
    await store.update_task(org, cron["id"], lambda _current: {"queue": None})
    rows = await db(
        database_url,
        "select queue, queue_position from executions where id = any($1::uuid[])",
        [third, fourth],
    )
    assert rows == [{"queue": None, "queue_position": None}] * 2
    assert {c.id for c in await claim(store)} == {third, fourth}  # unqueued: both at once


async def test_a_rescheduled_item_moves_in_its_queue(store: Store) -> None:
    """A one-time task's new run_at moves its pending execution; its place in the queue is its
    time, so an item moved later no longer holds back the items queued after it."""
    org, _ = await make_org(store)
    now = datetime.now(UTC)
    first = await store.insert_task(org, once_task(URL, queue="q"), 0)
    second = await enqueue(store, org, "q")
    later = (now + timedelta(hours=1)).isoformat()
    await store.update_task(org, first["id"], lambda _current: {"scheduled_at": later})
    assert [c.id for c in await claim(store)] == [second]


async def test_one_statement_inserting_tasks_and_executions_gets_queues_and_order(
    store: Store, database_url: str
) -> None:
    """Any insert path gets queue data from the database: one statement that writes the
    executions before their tasks (ids chosen up front, as a batch insert may) still files
    every execution in its task's queue, in insertion order, and creates the queue row."""
    org, _ = await make_org(store)
    rows = await db(
        database_url,
        """
        with ids as (
            select uuid_generate_v7() as id, i from generate_series(1, 5) i
        ), e as (
            insert into executions (organization_id, task_id, source, priority, scheduled_for)
            select $1, ids.id, 'schedule', 1, now() from ids order by ids.i
            returning id
        ), t as (
            insert into tasks (id, organization_id, name, url, method, schedule_type,
                               scheduled_at, queue)
            select ids.id, $1, 'item ' || ids.i, $2, 'POST', 'once', now(), 'batch' from ids
            returning id
        )
        select (select count(*) from e) as executions, (select count(*) from t) as tasks
        """,
        org,
        URL,
    )
    assert rows == [{"executions": 5, "tasks": 5}]
    assert await queue_counts(store, org) == [
        {"name": "batch", "paused": False, "pending": 5, "running": 0}
    ]
    ran = []
    for _ in range(5):
        batch = await claim(store)
        assert len(batch) == 1
        ran.append((await store.get_task(org, batch[0].task_id))["name"])
        await succeed(store, batch)
    assert ran == [f"item {i}" for i in range(1, 6)]


# ------------------------------------------------------------------------------ the migration


@pytest.fixture
def upgrade_database_url(pg_server_dsn: str) -> Iterator[str]:
    """An empty database of its own (the template is already migrated)."""
    name = "t_queue_upgrade"
    _admin(pg_server_dsn, f"drop database if exists {name}", f"create database {name}")
    yield with_database(pg_server_dsn, name)
    _admin(pg_server_dsn, f"drop database if exists {name} with (force)")


async def test_migration_files_existing_queued_work(
    aio_loop: object, upgrade_database_url: str
) -> None:
    """Upgrading a database that already has queued tasks: queue rows appear, pending rows
    are placed in their queues (a retry at its chain's place), and rows that were running —
    several in one queue, as nothing limited them before — finish outside the queue."""
    before = [m for m in available() if m.version < 5]

    async def upgrade() -> list[dict[str, Any]]:
        conn = await asyncpg.connect(upgrade_database_url)
        try:
            await conn.execute(
                "create table schema_migrations (version integer primary key, "
                "name text not null, applied_at timestamptz not null default now())"
            )
            for migration in before:
                await conn.execute(migration.sql)
                await conn.execute(
                    "insert into schema_migrations (version, name) values ($1, $2)",
                    migration.version,
                    migration.name,
                )
            await conn.execute(LEGACY_DATA)
            assert 5 in await apply_migrations(conn)
            rows = await conn.fetch(
                "select e.status, e.attempt, e.queue, e.queue_position, e.scheduled_for, "
                "t.name, (select array_agg(name order by name) from queues) as queues "
                "from executions e join tasks t on t.id = e.task_id "
                "order by t.name, e.attempt"
            )
            return [dict(r) for r in rows]
        finally:
            await conn.close()

    rows = await trio_asyncio.aio_as_trio(upgrade)()
    assert {tuple(r["queues"]) for r in rows} == {("emails", "sms")}
    got = {(r["name"], r["attempt"]): r for r in rows}
    assert got[("plain", 1)]["queue"] is None
    assert [got[("run", n)]["queue"] for n in (1, 2)] == [None, None]  # running: outside
    assert got[("wait", 1)]["queue"] == "emails"
    assert got[("wait", 1)]["queue_position"] == got[("wait", 1)]["scheduled_for"]
    retry = got[("chain", 2)]
    assert retry["queue"] == "emails" and retry["status"] == "pending"
    assert retry["queue_position"] == got[("chain", 1)]["scheduled_for"]  # the chain's place
    assert got[("chain", 1)]["queue"] is None  # finished rows are left as they were


# Before 005: two running rows in queue "emails", a pending one, a failed chain with a pending
# retry, a task in "sms" without executions, and an unqueued pending row.
LEGACY_DATA = """
insert into organizations (id, name, slug, webhook_secret)
values ('01900000-0000-7000-8000-000000000001', 'Old', 'old', 'whsec_x');
insert into tasks (id, organization_id, name, url, method, schedule_type, scheduled_at, queue)
values ('01900000-0000-7000-8000-0000000000a1', '01900000-0000-7000-8000-000000000001',
        'run', 'http://a.test/', 'POST', 'once', now(), 'emails'),
       ('01900000-0000-7000-8000-0000000000a2', '01900000-0000-7000-8000-000000000001',
        'wait', 'http://a.test/', 'POST', 'once', now(), 'emails'),
       ('01900000-0000-7000-8000-0000000000a3', '01900000-0000-7000-8000-000000000001',
        'chain', 'http://a.test/', 'POST', 'once', now(), 'emails'),
       ('01900000-0000-7000-8000-0000000000a4', '01900000-0000-7000-8000-000000000001',
        'idle', 'http://a.test/', 'POST', 'once', now(), 'sms'),
       ('01900000-0000-7000-8000-0000000000a5', '01900000-0000-7000-8000-000000000001',
        'plain', 'http://a.test/', 'POST', 'once', now(), null);
insert into executions (id, organization_id, task_id, root_execution_id, source, status,
                        attempt, priority, scheduled_for, started_at, finished_at,
                        lease_token, lease_expires_at)
values ('01900000-0000-7000-8000-0000000000b1', '01900000-0000-7000-8000-000000000001',
        '01900000-0000-7000-8000-0000000000a1', null, 'schedule', 'running', 1, 1,
        now() - interval '5 m', now(), null, gen_random_uuid(), now() + interval '1 m'),
       ('01900000-0000-7000-8000-0000000000b2', '01900000-0000-7000-8000-000000000001',
        '01900000-0000-7000-8000-0000000000a1', '01900000-0000-7000-8000-0000000000b1',
        'retry', 'running', 2, 1, now() - interval '4 m', now(), null, gen_random_uuid(),
        now() + interval '1 m'),
       ('01900000-0000-7000-8000-0000000000b3', '01900000-0000-7000-8000-000000000001',
        '01900000-0000-7000-8000-0000000000a2', null, 'schedule', 'pending', 1, 1,
        now() - interval '3 m', null, null, null, null),
       ('01900000-0000-7000-8000-0000000000b4', '01900000-0000-7000-8000-000000000001',
        '01900000-0000-7000-8000-0000000000a3', null, 'schedule', 'failed', 1, 1,
        now() - interval '10 m', now(), now(), null, null),
       ('01900000-0000-7000-8000-0000000000b5', '01900000-0000-7000-8000-000000000001',
        '01900000-0000-7000-8000-0000000000a3', '01900000-0000-7000-8000-0000000000b4',
        'retry', 'pending', 2, 1, now() + interval '1 m', null, null, null, null),
       ('01900000-0000-7000-8000-0000000000b6', '01900000-0000-7000-8000-000000000001',
        '01900000-0000-7000-8000-0000000000a5', null, 'schedule', 'pending', 1, 1,
        now(), null, null, null, null);
"""


# ------------------------------------------------------------------------------- the HTTP API


async def post_task(api: Api, **payload: Any) -> dict[str, Any]:
    reply = await api.post("/tasks", json={"url": TARGET, **payload})
    assert reply.status in (201, 202), reply.body
    return reply.body["data"]


async def test_get_queues_lists_own_queues_with_counts(api: Api, other: Api, store: Store) -> None:
    await post_task(api, queue="emails")
    await post_task(api, queue="emails")
    await post_task(api, queue="sms", cron="*/5 * * * *")  # a cron task: queue, no execution
    await post_task(api)
    await post_task(other, queue="emails")
    await post_task(other, queue="theirs")
    claimed = await claim(store)  # one head per queue with work, and the unqueued task
    assert len(claimed) == 4
    reply = await api.get("/queues")
    assert reply.status == 200
    assert reply.body == {
        "data": [
            {"name": "emails", "paused": False, "pending": 1, "running": 1},
            {"name": "sms", "paused": False, "pending": 0, "running": 0},
        ]
    }
    reply = await other.get("/queues")
    assert [q["name"] for q in reply.body["data"]] == ["emails", "theirs"]


async def test_pause_and_resume_answer_name_and_state(api: Api) -> None:
    await post_task(api, queue="emails.v2:eu-1_x")
    for action, paused in (("pause", True), ("pause", True), ("resume", False), ("resume", False)):
        reply = await api.post(f"/queues/emails.v2:eu-1_x/{action}")
        assert reply.status == 200, reply.body
        assert reply.body == {"data": {"name": "emails.v2:eu-1_x", "paused": paused}}
    await api.post("/queues/emails.v2:eu-1_x/pause")
    listed = (await api.get("/queues")).body["data"]
    assert listed == [{"name": "emails.v2:eu-1_x", "paused": True, "pending": 1, "running": 0}]


async def test_pausing_a_name_never_touches_another_organizations_queue(
    api: Api, other: Api, store: Store
) -> None:
    """Globex pausing "emails" pauses Globex's own queue of that name; Acme's keeps running and
    Acme's listing does not change."""
    await post_task(api, queue="emails")
    for action in ("resume", "pause"):
        reply = await other.post(f"/queues/emails/{action}")
        assert reply.body == {"data": {"name": "emails", "paused": action == "pause"}}
    listed = (await api.get("/queues")).body["data"]
    assert listed == [{"name": "emails", "paused": False, "pending": 1, "running": 0}]
    await post_task(other, queue="emails")
    claimed = await claim(store)
    assert len(claimed) == 1  # Acme's item; Globex's waits in its paused queue
    assert claimed[0].organization_id != (await other_org_id(other, store))


async def other_org_id(other: Api, store: Store) -> Any:
    reply = await other.get("/org")
    return UUID(reply.body["data"]["id"])


async def test_a_queue_paused_before_its_first_item_holds_that_item(api: Api, store: Store) -> None:
    """A queue is a name: pausing it before any task uses it works, and the items wait."""
    reply = await api.post("/queues/reports/pause")
    assert reply.status == 200, reply.body
    assert reply.body == {"data": {"name": "reports", "paused": True}}
    await post_task(api, queue="reports")
    assert await claim(store) == []
    listed = (await api.get("/queues")).body["data"]
    assert listed == [{"name": "reports", "paused": True, "pending": 1, "running": 0}]
    await api.post("/queues/reports/resume")
    assert len(await claim(store)) == 1


async def test_pausing_an_invalid_queue_name_is_a_validation_error(api: Api) -> None:
    assert_error(await api.post("/queues/-dash/pause"), 422, "validation_error")


async def test_queue_routes_need_a_key(app: QuartTrio) -> None:
    anonymous = Api(app, None)
    for method, path in (
        ("GET", "/queues"),
        ("POST", "/queues/emails/pause"),
        ("POST", "/queues/emails/resume"),
    ):
        assert_error(await anonymous.call(method, path), 401, "unauthorized")


@pytest.mark.parametrize(
    "queue",
    ["", "has space", "a/b", "-leading-dash", ".hidden", "x" * 201, "emoji-\u2603", "q?x=1"],
)
async def test_queue_names_must_be_addressable(api: Api, queue: str) -> None:
    """A queue name must fit a URL path segment as it is (POST and PATCH)."""
    error = assert_error(
        await api.post("/tasks", json={"url": TARGET, "queue": queue}), 422, "validation_error"
    )
    assert "letters, digits" in error["details"]["queue"][0]
    task = await post_task(api, cron="*/5 * * * *")
    error = assert_error(
        await api.patch(f"/tasks/{task['id']}", json={"queue": queue}), 422, "validation_error"
    )
    assert set(error["details"]) == {"queue"}


async def test_valid_queue_names_are_accepted(api: Api) -> None:
    for queue in ("emails", "A", "0", "emails.v2:eu-1_x", "x" * 200):
        assert (await post_task(api, queue=queue))["task_id"]
    names = [q["name"] for q in (await api.get("/queues")).body["data"]]
    assert sorted(names) == sorted(["emails", "A", "0", "emails.v2:eu-1_x", "x" * 200])
