"""The engine's SQL against real Postgres: claim, fenced completion, rescue, release, and the
cancel safety of the trio → asyncio bridge.

Leases use the database clock, so a lease is made to expire by moving ``lease_expires_at`` into
the past with plain SQL on a separate connection — never by waiting.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
import pytest
import trio
import trio_asyncio

from runlater.actors.rescuer import Rescuer, RescuerResult
from runlater.store import bridge
from runlater.store.postgres import Store
from runlater.store.records import ClaimedExecution, Outcome
from tests.helpers.db import raw_connection, sql
from tests.helpers.factories import cron_task, make_org, once_task

URL = "http://127.0.0.1:9/x"
FAR_FUTURE = "2999-01-01T00:00:00+00:00"


async def expire_leases(dsn: str, *ids: UUID) -> None:
    async with raw_connection(dsn) as conn:
        done = await trio_asyncio.aio_as_trio(conn.execute)(
            "update executions set lease_expires_at = now() - interval '1 s' "
            "where id = any($1::uuid[]) and status = 'running'",
            list(ids),
        )
    assert done == f"UPDATE {len(ids)}"


async def execution(dsn: str, execution_id: UUID) -> dict[str, Any]:
    async with raw_connection(dsn) as conn:
        rows = await sql(conn, "select * from executions where id = $1", execution_id)
    return rows[0]


def outcome(
    claimed: ClaimedExecution,
    *,
    token: UUID | None = None,
    status: str = "success",
    status_code: int | None = 200,
    retry_in_s: float | None = None,
) -> Outcome:
    return Outcome(
        execution_id=claimed.id,
        lease_token=claimed.lease_token if token is None else token,
        status=status,
        status_code=status_code,
        duration_ms=5,
        response_body="ok",
        error_message=None if status == "success" else "boom",
        retry_in_s=retry_in_s,
    )


async def claim_one(store: Store, node: str) -> ClaimedExecution:
    claimed, _ = await store.claim(1, node, 30)
    assert len(claimed) == 1
    return claimed[0]


# --------------------------------------------------------------------------------- claim


async def test_concurrent_claimers_claim_each_execution_exactly_once(
    store: Store, database_url: str
) -> None:
    """200 due executions, 4 claimers racing in batches (``FOR UPDATE SKIP LOCKED``): every
    execution is handed out exactly once overall — no row is leased to two nodes — and each
    row ends up leased by the node that received it."""
    org, _ = await make_org(store)
    for _ in range(200):
        await store.insert_task(org, once_task(URL), 0)
    got: dict[str, list[ClaimedExecution]] = {f"node-{i}": [] for i in range(4)}

    async def claimer(node: str) -> None:
        while True:
            batch, _ = await store.claim(7, node, 30)
            if not batch:
                return
            got[node].extend(batch)

    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            for node in got:
                nursery.start_soon(claimer, node)

    claimed_ids = [c.id for batch in got.values() for c in batch]
    assert len(claimed_ids) == 200
    assert len(set(claimed_ids)) == 200
    async with raw_connection(database_url) as conn:
        rows = await sql(conn, "select id, status, leased_by, lease_token from executions")
    assert len(rows) == 200
    by_id = {r["id"]: r for r in rows}
    for node, batch in got.items():
        for c in batch:
            row = by_id[c.id]
            assert (row["status"], row["leased_by"], row["lease_token"]) == (
                "running",
                node,
                c.lease_token,
            )
    assert await store.count_claimable() == 0


async def test_claim_order_tier_interval_one_time_last_then_oldest(
    store: Store, database_url: str
) -> None:
    """Claim order: Pro before Free; within a tier shorter cron interval first, one-time tasks
    last; equal priority → oldest ``scheduled_for`` first. The rows are inserted so that age
    alone would give a different order."""
    pro, _ = await make_org(store, "Prolab", tier="pro")
    free, _ = await make_org(store, "Freebie", tier="free")
    now = datetime.now(UTC)

    async def once(org: UUID, minutes_ago: int, name: str) -> UUID:
        at = (now - timedelta(minutes=minutes_ago)).isoformat()
        row = await store.insert_task(org, once_task(URL, name=name, scheduled_at=at), None)
        return row["execution_id"]

    async def cron(org: UUID, interval: int, name: str) -> UUID:
        row = await store.insert_task(
            org,
            cron_task(URL, "0 0 1 1 *", FAR_FUTURE, interval_minutes=interval, name=name),
            None,
        )
        return (await store.trigger_task(org, row["id"]))["id"]  # due now: the newest rows

    expected = {}
    expected["free once"] = await once(free, 50, "free once")
    expected["pro once newer"] = await once(pro, 10, "pro once newer")
    expected["pro once older"] = await once(pro, 40, "pro once older")
    # A free plan's shortest cron interval is 60 minutes (runlater.plans).
    expected["free cron 60"] = await cron(free, 60, "free cron 60")
    expected["pro cron 60"] = await cron(pro, 60, "pro cron 60")
    expected["pro cron 5"] = await cron(pro, 5, "pro cron 5")
    order = [
        "pro cron 5",
        "pro cron 60",
        "pro once older",
        "pro once newer",
        "free cron 60",
        "free once",
    ]

    claimed = [(await claim_one(store, "n1")).id for _ in order]
    names = {v: k for k, v in expected.items()}
    assert [names[i] for i in claimed] == order
    async with raw_connection(database_url) as conn:
        priorities = {
            names[r["id"]]: r["priority"]
            for r in await sql(conn, "select id, priority from executions")
        }
    assert priorities["pro once older"] == priorities["pro once newer"]
    assert max(p for k, p in priorities.items() if k.startswith("pro")) < min(
        p for k, p in priorities.items() if k.startswith("free")
    )


async def test_claim_lease_is_timeout_plus_margin_on_database_clock(
    store: Store, database_url: str
) -> None:
    """A claimed row's lease runs exactly ``timeout_ms`` + margin past its start, both taken
    from the database clock in the claiming statement."""
    org, _ = await make_org(store)
    await store.insert_task(org, once_task(URL, timeout_ms=7000), 0)
    claimed = await claim_one(store, "n1")
    row = await execution(database_url, claimed.id)
    assert row["lease_expires_at"] - row["started_at"] == timedelta(seconds=7 + 30)
    assert row["leased_by"] == "n1" and row["lease_token"] == claimed.lease_token


# -------------------------------------------------------------------- fenced completion


async def test_late_completion_with_stale_token_changes_nothing(
    store: Store, database_url: str
) -> None:
    """Completion is fenced by the lease token: node A's lease expires, the rescuer hands the
    row back, node B claims it; A's late completion (even one asking for a retry) changes 0
    rows and creates no retry, and B's outcome is the one recorded."""
    org, _ = await make_org(store)
    task = await store.insert_task(org, once_task(URL, retry_attempts=3), 0)
    a = await claim_one(store, "node-a")
    await expire_leases(database_url, a.id)
    rescued = await store.rescue_expired()
    assert (rescued.requeued, rescued.failed) == (1, 0)
    b = await claim_one(store, "node-b")
    assert b.id == a.id and b.lease_token != a.lease_token

    late = outcome(a, status="failed", status_code=503, retry_in_s=1)
    assert await store.complete([late]) == (0, 0)
    row = await execution(database_url, a.id)
    assert (row["status"], row["leased_by"], row["lease_token"]) == (
        "running",
        "node-b",
        b.lease_token,
    )

    assert await store.complete([outcome(b, status_code=201)]) == (1, 0)
    row = await execution(database_url, a.id)
    assert (row["status"], row["status_code"], row["lease_token"]) == ("success", 201, None)
    assert await store.complete([late]) == (0, 0)  # and still nothing after B finished
    rows = await store.list_task_executions(org, task["id"], status=None, limit=10, offset=0)
    assert [(r["status"], r["status_code"]) for r in rows] == [("success", 201)]


async def test_completion_before_rescue_with_expired_lease_still_needs_its_token(
    store: Store, database_url: str
) -> None:
    """A completion carrying a made-up token never lands, while the holder's own token does;
    retries are created only for the completion that landed."""
    org, _ = await make_org(store)
    await store.insert_task(org, once_task(URL, retry_attempts=3), 0)
    a = await claim_one(store, "node-a")
    assert await store.complete(
        [outcome(a, token=uuid.uuid4(), status="failed", retry_in_s=1)]
    ) == (0, 0)
    assert await store.complete([outcome(a, status="failed", status_code=500, retry_in_s=60)]) == (
        1,
        1,
    )
    row = await execution(database_url, a.id)
    assert row["status"] == "failed"


# ------------------------------------------------------------------------------ rescue


async def test_rescue_requeues_expired_and_fails_on_third_interruption(
    store: Store, database_url: str
) -> None:
    """An expired lease goes back to ``pending`` with ``rescue_count + 1`` (lease cleared);
    the third interruption fails the execution for good with an "interrupted" error; a lease
    that has not expired is never touched."""
    org, _ = await make_org(store)
    await store.insert_task(org, once_task(URL), 0)
    await store.insert_task(org, once_task(URL), 0)
    claimed, _ = await store.claim(2, "n1", 30)
    victim, bystander = claimed

    for interruption in (1, 2):
        await expire_leases(database_url, victim.id)
        result = await store.rescue_expired()
        assert (result.requeued, result.failed) == (1, 0)
        row = await execution(database_url, victim.id)
        assert row["status"] == "pending"
        assert row["rescue_count"] == interruption
        assert row["lease_token"] is None and row["lease_expires_at"] is None
        assert row["started_at"] is None and row["finished_at"] is None
        again = await claim_one(store, "n1")
        assert again.id == victim.id

    await expire_leases(database_url, victim.id)
    result = await store.rescue_expired()
    assert (result.requeued, result.failed) == (0, 1)
    row = await execution(database_url, victim.id)
    assert row["status"] == "failed" and row["rescue_count"] == 3
    assert "interrupted" in row["error_message"]
    assert row["finished_at"] is not None and row["lease_token"] is None
    assert await store.claim(5, "n1", 30) == ([], None)  # nothing left to run

    still = await execution(database_url, bystander.id)
    assert (still["status"], still["lease_token"], still["rescue_count"]) == (
        "running",
        bystander.lease_token,
        0,
    )
    assert await store.rescue_expired() == type(result)(0, 0)


async def test_rescuer_requeues_and_wakes_every_node(store: Store, database_url: str) -> None:
    """The Rescuer actor requeues expired leases and then NOTIFYs ``runlater_executions`` so
    every node's PoolManager looks again; a pass with nothing expired sends no wake-up."""
    org, _ = await make_org(store)
    await store.insert_task(org, once_task(URL), 0)
    claimed = await claim_one(store, "dead-node")
    send, recv = trio.open_memory_channel[str](10)

    def on_notify(conn: Any, pid: int, channel: str, payload: str) -> None:
        send.send_nowait(channel)

    async with raw_connection(database_url) as listener:
        await trio_asyncio.aio_as_trio(listener.add_listener)("runlater_executions", on_notify)
        rescuer = Rescuer(store, interval_s=1)
        assert await rescuer.run_once() == RescuerResult(0, 0)
        await expire_leases(database_url, claimed.id)
        assert await rescuer.run_once() == RescuerResult(1, 0)
        with trio.fail_after(5):
            assert await recv.receive() == "runlater_executions"
        await trio_asyncio.aio_as_trio(listener.fetchval)("select 1")  # flush pending notices
        with pytest.raises(trio.WouldBlock):
            recv.receive_nowait()  # exactly one wake-up, none from the empty pass
    row = await execution(database_url, claimed.id)
    assert (row["status"], row["rescue_count"]) == ("pending", 1)


async def test_release_leases_needs_the_matching_token(store: Store, database_url: str) -> None:
    """A node shutting down hands its leases straight back to ``pending`` — only for rows whose
    token it still holds; a wrong token leaves the row running under its real holder."""
    org, _ = await make_org(store)
    for _ in range(3):
        await store.insert_task(org, once_task(URL), 0)
    claimed, _ = await store.claim(3, "n1", 30)
    mine, theirs, done = claimed
    assert await store.complete([outcome(done)]) == (1, 0)

    released = await store.release_leases(
        [
            (mine.id, mine.lease_token),
            (theirs.id, uuid.uuid4()),
            (done.id, done.lease_token),
        ]
    )
    assert released == 1
    row = await execution(database_url, mine.id)
    assert (row["status"], row["lease_token"], row["started_at"]) == ("pending", None, None)
    row = await execution(database_url, theirs.id)
    assert (row["status"], row["lease_token"]) == ("running", theirs.lease_token)
    row = await execution(database_url, done.id)
    assert row["status"] == "success"

    again, _ = await store.claim(5, "n2", 30)
    assert [c.id for c in again] == [mine.id]


# ------------------------------------------------------------------------ cancel safety


async def test_cancel_inside_a_transaction_rolls_back_and_releases(
    store: Store, database_url: str
) -> None:
    """A trio cancel that lands while a unit of work holds a transaction open (a row lock and a
    long statement) rolls the transaction back before the caller sees the cancel: no session
    is left ``idle in transaction``, the locked row can be updated at once by another
    session, and the pool keeps working."""
    org, _ = await make_org(store)
    row = await store.insert_task(org, once_task(URL), 0)
    execution_id = row["execution_id"]

    async def hold(conn: asyncpg.Connection, eid: UUID) -> None:
        async with conn.transaction():
            await conn.execute("update executions set error_message = 'held' where id = $1", eid)
            await conn.execute("select pg_sleep(30)")

    started = trio.current_time()
    with trio.move_on_after(0.3) as scope:
        await bridge.run(store._pool, hold, execution_id)
    assert scope.cancelled_caught
    assert trio.current_time() - started < 10

    async with raw_connection(database_url) as conn:
        sessions = await sql(
            conn,
            "select pid, state, query from pg_stat_activity "
            "where datname = current_database() and pid <> pg_backend_pid()",
        )
        # also "idle in transaction (aborted)": a cancelled statement whose ROLLBACK never ran
        assert [s for s in sessions if (s["state"] or "").startswith("idle in transaction")] == []
        assert [
            s for s in sessions if "pg_sleep" in (s["query"] or "") and s["state"] == "active"
        ] == []
        await trio_asyncio.aio_as_trio(conn.execute)("set lock_timeout = '1s'")
        done = await trio_asyncio.aio_as_trio(conn.execute)(
            "update executions set error_message = 'free' where id = $1", execution_id
        )
        assert done == "UPDATE 1"
    got = await execution(database_url, execution_id)
    assert got["error_message"] == "free"  # the held write was rolled back, ours landed
    # the connection went back to the pool: none is stuck with the cancelled unit
    assert store._pool.get_idle_size() == store._pool.get_size()
    await store.ping()
    assert await store.count_claimable() == 1


async def test_rescued_execution_of_a_deleted_task_is_cancelled_not_rerun(
    store: Store, database_url: str
) -> None:
    """A run in flight when its task was deleted is cancelled at rescue instead of being put
    back to pending (and delivered for a task that no longer exists)."""
    org, _ = await make_org(store)
    row = await store.insert_task(org, once_task(URL), 0)
    claimed = await claim_one(store, "node-a")
    await store.delete_task(org, row["id"])
    await expire_leases(database_url, claimed.id)
    result = await store.rescue_expired()
    assert (result.requeued, result.failed, result.cancelled) == (0, 0, 1)
    gone = await execution(database_url, claimed.id)
    assert gone["status"] == "cancelled" and gone["finished_at"] is not None
    assert (await store.claim(10, "node-b", 5))[0] == []
