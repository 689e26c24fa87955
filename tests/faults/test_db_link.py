"""The link between a node and Postgres under faults, driven by the suite's own TCP proxy
(``tests/helpers/faultproxy.py``) between a real store or node and the test cluster.

Each test states the invariant it checks; each fails without the mechanism it names. Timing
bounds here are deadlines the product promises (``/health`` within 1 s, a request within its
database deadline), asserted with the configured value plus a fixed margin, not speed goals.
"""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

import httpx
import pytest
import trio

from runlater.actors import listener as listener_module
from runlater.actors.elector import LEASE_NAME, Elector
from runlater.actors.listener import Listener
from runlater.actors.scheduler import Scheduler
from runlater.clock import SystemClock
from runlater.config import Settings
from runlater.errors import StoreUnavailable
from runlater.node import Node, db_timeouts, run_node
from runlater.store import transaction as store_transaction
from runlater.store.postgres import Store
from runlater.store.session import DbTimeouts
from runlater.web.app import create_app
from tests.helpers.db import raw_connection, sql
from tests.helpers.factories import cron_task, make_org
from tests.helpers.faultproxy import FaultProxy, fault_proxy

# Short database limits, so that the tests wait seconds, not the defaults' tens of seconds.
LIMITS = Settings(
    host="127.0.0.1",
    port=0,
    allow_private_targets=True,
    rate_limit_per_ip=0,
    rate_limit_per_key=0,
    min_workers=1,
    max_workers=4,
    poll_interval_s=0.2,
    leader_lease_s=3,
    leader_renew_s=0.5,
    db_connect_timeout_s=1.0,
    db_statement_timeout_ms=1000,
    db_lock_timeout_ms=500,
    db_idle_in_transaction_timeout_ms=1500,
)
TIMEOUTS = db_timeouts(LIMITS)
# A node whose sessions the database keeps longer (so a test has time to look while it holds
# a lock), and whose client waits longer than the leader lease below.
PATIENT = dataclasses.replace(TIMEOUTS, statement_ms=5000, idle_in_transaction_ms=4000)
DEADLINE_S = TIMEOUTS.unit_deadline_s  # 2.5 s: what a request may wait for the database
MARGIN_S = 1.0  # scheduling slack on a loaded 2-core machine
TARGET = "http://127.0.0.1:9999/x"


@asynccontextmanager
async def proxied(database_url: str) -> AsyncIterator[FaultProxy]:
    parts = urlsplit(database_url)
    async with fault_proxy(parts.hostname or "127.0.0.1", parts.port or 5432) as proxy:
        yield proxy


@asynccontextmanager
async def proxied_store(
    proxy: FaultProxy, database_url: str, name: str, timeouts: DbTimeouts = TIMEOUTS
) -> AsyncIterator[Store]:
    store = await Store.open(
        proxy.dsn(database_url), pool_size=4, timeouts=timeouts, application_name=name
    )
    try:
        yield store
    finally:
        with trio.CancelScope(shield=True):
            await store.close()


@asynccontextmanager
async def node_through(proxy: FaultProxy, database_url: str, name: str) -> AsyncIterator[Node]:
    settings = LIMITS.replace(node_name=name)
    async with trio.open_nursery() as nursery:
        node = await nursery.start(run_node, settings, proxy.dsn(database_url))
        try:
            yield node
        finally:
            nursery.cancel_scope.cancel()


def real_store(node: Node) -> Store:
    """The node's store, with its full API (``run_node`` hands the node the real one)."""
    assert isinstance(node.store, Store)
    return node.store


async def timed(call: Any) -> tuple[float, Any]:
    started = trio.current_time()
    result = await call()
    return trio.current_time() - started, result


async def sessions(database_url: str, application_name: str) -> list[dict[str, Any]]:
    async with raw_connection(database_url) as conn:
        return await sql(
            conn,
            "select pid, state from pg_stat_activity where application_name = $1",
            application_name,
        )


# ------------------------------------------------------------------ health during a blackhole


async def test_health_and_readiness_answer_within_a_second_during_a_blackhole(
    aio_loop: object, database_url: str
) -> None:
    """``/health`` (liveness) and ``/health/ready`` answer within 1 s while the link is
    stalled — also while API requests hold every pooled connection, because readiness asks
    on a connection of its own — and readiness comes back once the link heals."""
    async with proxied(database_url) as proxy, node_through(proxy, database_url, "hb") as node:
        url = node.web.bound[0]
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            assert (await http.get("/health/ready")).status_code == 200
            proxy.blackhole()
            async with trio.open_nursery() as hogs:
                for _ in range(LIMITS.db_pool_size):  # stuck API calls fill the pool
                    hogs.start_soon(http.get, "/api/v1/tasks")
                for _ in range(3):
                    took, live = await timed(lambda: http.get("/health"))
                    assert live.status_code == 200 and took < 1.0, took
                    took, ready = await timed(lambda: http.get("/health/ready"))
                    assert ready.status_code == 503 and took < 1.0, took
                    assert ready.json() == {"status": "error", "database": "unreachable"}
                live = await http.get("/health")
                assert live.json() == {"status": "ok", "database": "unreachable"}
                proxy.pass_through()
            with trio.fail_after(10):
                while (await http.get("/health/ready")).status_code != 200:
                    await trio.sleep(0.1)


async def test_requests_fail_fast_on_a_stalled_link(aio_loop: object, database_url: str) -> None:
    """An API call whose database link stalls answers 503 within the database deadline
    (not when the link comes back), and so does the next one, which finds no working
    connection; once the link heals, calls succeed again."""
    async with proxied(database_url) as proxy, node_through(proxy, database_url, "ff") as node:
        _, key = await make_org(real_store(node))
        headers = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(base_url=node.web.bound[0], headers=headers) as http:
            assert (await http.get("/api/v1/tasks")).status_code == 200
            proxy.blackhole()
            for _ in range(2):
                took, reply = await timed(lambda: http.get("/api/v1/tasks", timeout=30))
                assert reply.status_code == 503, reply.text
                assert reply.json()["error"]["code"] == "unavailable"
                assert took < DEADLINE_S + MARGIN_S, took
            proxy.pass_through()
            with trio.fail_after(10):
                while (await http.get("/api/v1/tasks")).status_code != 200:
                    await trio.sleep(0.1)


# ------------------------------------------------------- a node partitioned while holding a lock


async def _due_cron(store: Store, org: UUID, name: str) -> UUID:
    """A cron task due at the start of this minute (one slot, nothing missed) whose next slot
    is a year away: however long a test runs (a loaded machine may cross a minute boundary),
    each pass sees exactly the runs it is about."""
    due = datetime.now(UTC).replace(second=0, microsecond=0)
    row = await store.insert_task(
        org, cron_task(TARGET, "0 0 1 1 *", due.isoformat(), name=name), None
    )
    return row["id"]


async def _executions(database_url: str, task_id: UUID) -> list[dict[str, Any]]:
    async with raw_connection(database_url) as conn:
        return await sql(conn, "select source, status from executions where task_id = $1", task_id)


async def test_a_partitioned_lock_holder_stalls_no_one(store: Store, database_url: str) -> None:
    """Node A is cut off in the middle of a PATCH, holding the task's row lock. Meanwhile, on
    healthy node B: the scheduler creates the runs of the other due cron tasks at once (it
    skips the locked row instead of waiting on it); a read of the locked task answers; a
    change of it answers 503 within the lock timeout, and never takes effect later. The
    database ends A's stranded session after its idle-in-transaction limit, the lock is
    released, and the skipped task catches up on B's next pass. A's change never lands."""
    org, key = await make_org(store)
    locked = await _due_cron(store, org, "locked")
    others = [await _due_cron(store, org, f"other-{i}") for i in range(3)]
    app_b = create_app(store, LIMITS, SystemClock())
    client_b = app_b.test_client()
    headers = {"Authorization": f"Bearer {key}"}
    scheduler_b = Scheduler(store, SystemClock(), misfire_grace_s=300)

    async with (
        proxied(database_url) as proxy,
        proxied_store(proxy, database_url, "node-a", PATIENT) as a,
    ):
        failed_on_a: list[BaseException] = []
        holding = trio.Event()

        def plan(current: dict[str, Any]) -> dict[str, Any]:
            proxy.blackhole()  # the partition, while this transaction holds the row lock
            holding.set()
            return {"name": "changed by a"}

        async def patch_on_a() -> None:
            try:
                await a.update_task(org, locked, plan)
            except StoreUnavailable as exc:
                failed_on_a.append(exc)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(patch_on_a)
            await holding.wait()
            with trio.fail_after(5):
                while [s["state"] for s in await sessions(database_url, "node-a")] != [
                    "idle in transaction"
                ]:
                    await trio.sleep(0.02)

            result = await scheduler_b.run_once()
            assert (result.created, result.skipped) == (3, 1)
            for task_id in others:
                assert await _executions(database_url, task_id) == [
                    {"source": "schedule", "status": "pending"}
                ]
            assert await _executions(database_url, locked) == []
            # A still holds the lock: B did not wait for it.
            assert [s["state"] for s in await sessions(database_url, "node-a")] == [
                "idle in transaction"
            ]

            got = await client_b.get(f"/api/v1/tasks/{locked}", headers=headers)
            assert got.status_code == 200
            took, changed = await timed(
                lambda: client_b.patch(
                    f"/api/v1/tasks/{locked}", headers=headers, json={"name": "changed by b"}
                )
            )
            assert changed.status_code == 503
            assert (await changed.get_json())["error"]["code"] == "unavailable"
            assert took < store.timeouts.lock_ms / 1000 + MARGIN_S, took

            # The database ends A's session (idle in transaction too long): the lock is gone.
            with trio.fail_after(10):
                while await sessions(database_url, "node-a"):
                    await trio.sleep(0.05)
            result = await scheduler_b.run_once()
            assert (result.created, result.skipped) == (1, 0)
            proxy.pass_through()
        assert len(failed_on_a) == 1

    row = await store.get_task(org, locked)
    assert row["name"] == "locked"  # neither A's change nor B's refused one
    assert await _executions(database_url, locked) == [{"source": "schedule", "status": "pending"}]


async def test_an_answer_of_503_never_takes_effect_later(store: Store, database_url: str) -> None:
    """A task creation whose COMMIT is sent into a stalled link answers 503, and stays undone
    after the link heals and the held bytes (the COMMIT among them) reach the server: the
    client waited longer than the server keeps a silent transaction, so the COMMIT arrived at
    a session that no longer exists. Its Idempotency-Key is free for the retry, which creates
    the task once."""
    _, key = await make_org(store)
    headers = {"Authorization": f"Bearer {key}", "Idempotency-Key": "order-1"}
    async with proxied(database_url) as proxy, proxied_store(proxy, database_url, "node-a") as a:
        app = create_app(a, LIMITS, SystemClock())

        class CommitIntoTheStall:
            """The request's transaction, with the link stalling just as COMMIT is sent."""

            def __init__(self, top: Any) -> None:
                self.top = top

            async def commit(self) -> None:
                proxy.blackhole()
                await self.top.commit()

            async def rollback(self) -> None:
                await self.top.rollback()

        @app.after_request  # runs before the app's own commit hook (registered earlier)
        async def stall(response: Any) -> Any:
            assert response.status_code == 202, await response.get_data()
            tx = store_transaction.current.get()
            assert tx is not None and tx._state is not None
            tx._state.top = CommitIntoTheStall(tx._state.top)
            return response

        reply = await app.test_client().post(
            "/api/v1/tasks", headers=headers, json={"url": TARGET, "name": "t1"}
        )
        assert reply.status_code == 503
        proxy.pass_through()
        with trio.fail_after(10):
            while await sessions(database_url, "node-a"):
                await trio.sleep(0.05)
        async with raw_connection(database_url) as conn:
            assert await sql(conn, "select id from tasks where name = 't1'") == []
            assert await sql(conn, "select key from idempotency_keys") == []

    retry = (
        await create_app(store, LIMITS, SystemClock())
        .test_client()
        .post("/api/v1/tasks", headers=headers, json={"url": TARGET, "name": "t1"})
    )
    assert retry.status_code == 202
    async with raw_connection(database_url) as conn:
        assert len(await sql(conn, "select id from tasks where name = 't1'")) == 1


# ------------------------------------------------------------------------------ the leader


class LeaderOnly:
    """Stands for the leader-only actors: tells whether it runs."""

    def __init__(self) -> None:
        self.running = False

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        self.running = True
        try:
            task_status.started()
            await trio.sleep_forever()
        finally:
            self.running = False


async def test_a_stuck_leader_stops_its_leader_only_actors_before_its_lease_expires(
    aio_loop: object, database_url: str
) -> None:
    """The leader's renewal hangs on a stalled link (no error, no answer; the store would give
    up on it only after 6 s, longer than the 3 s lease). Its leader-only actors stop on the
    elector's own deadline — while the renewal still hangs, and while the lease row in the
    database is still valid, so no other node can have taken over yet."""
    group = LeaderOnly()
    async with (
        proxied(database_url) as proxy,
        proxied_store(proxy, database_url, "node-a", PATIENT) as a,
    ):
        elector = Elector(a, node="node-a", lease_s=3, renew_s=0.3, leader_group=lambda: group)
        async with trio.open_nursery() as nursery:
            await nursery.start(elector.run)
            with trio.fail_after(5):
                while not group.running:
                    await trio.sleep(0.01)
            proxy.blackhole()
            with trio.fail_after(10):
                while group.running:
                    await trio.sleep(0.01)
            async with raw_connection(database_url) as conn:
                lease = await sql(
                    conn,
                    "select holder, expires_at > now() as valid from leader_leases where name = $1",
                    LEASE_NAME,
                )
            assert lease == [{"holder": "node-a", "valid": True}]
            assert not elector.is_leader or trio.current_time() >= elector.valid_until
            proxy.pass_through()
            nursery.cancel_scope.cancel()


# --------------------------------------------------------------- session limits are in effect


async def test_every_session_runs_with_the_limits(aio_loop: object, database_url: str) -> None:
    """The pool's connections carry the server-side limits and the client socket's keepalive
    and user timeout (a partition that drops packets is noticed in seconds, not hours)."""
    store = await Store.open(database_url, pool_size=2, timeouts=TIMEOUTS, application_name="x")
    try:

        async def unit(conn: Any) -> tuple[dict[str, str], Any]:
            names = (
                "statement_timeout",
                "lock_timeout",
                "idle_in_transaction_session_timeout",
                "client_connection_check_interval",
                "tcp_keepalives_idle",
                "tcp_user_timeout",
                "application_name",
            )
            shown = {n: await conn.fetchval(f"show {n}") for n in names}
            return shown, conn._transport.get_extra_info("socket")

        shown, sock = await store._run(unit)
        assert shown == {
            "statement_timeout": "1s",
            "lock_timeout": "500ms",
            "idle_in_transaction_session_timeout": "1500ms",
            "client_connection_check_interval": "1s",
            "tcp_keepalives_idle": "5",
            "tcp_user_timeout": "10000",
            "application_name": "x",
        }
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 5
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == 10_000
    finally:
        await store.close()


@pytest.mark.parametrize("mode", ["blackhole", "reset"])
async def test_the_listener_reconnects_after_the_link_fails(
    aio_loop: object, database_url: str, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A LISTEN connection whose link stalls (no FIN, no RST) or resets is replaced: the
    listener finds out by its health ping's deadline and connects again once it can."""
    monkeypatch.setattr(listener_module, "HEALTH_CHECK_S", 0.2)
    async with proxied(database_url) as proxy:
        listener = Listener(proxy.dsn(database_url), {"runlater_tasks": []}, timeouts=TIMEOUTS)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(listener.run)
            with trio.fail_after(5):
                await listener.connected.wait()
            getattr(proxy, mode)()
            with trio.fail_after(DEADLINE_S + 5):
                while listener.reconnects == 0:
                    await trio.sleep(0.02)
            proxy.pass_through()
            with trio.fail_after(10):
                await listener.connected.wait()
            nursery.cancel_scope.cancel()


# --------------------------------------------- Idempotency-Keys and audit entries under resets


async def test_keys_and_audit_entries_survive_a_slow_link_with_resets(
    aio_loop: object, database_url: str
) -> None:
    """Clients create tasks, each retrying with its own Idempotency-Key on 503, 409 or a lost
    connection, while the node's database link is slow (50 ms a chunk) and is reset four
    times. In the end every client holds its original answer (a repeat replays the same
    body), each key made exactly one task — the one its answer names — every task has its
    audit entry, and no key is held by anyone once the link is back."""
    clients = 40
    answers: dict[str, dict[str, Any]] = {}
    refused: dict[int, int] = {}  # status (0: connection lost) -> how often
    longest_409_s = 0.0
    async with proxied(database_url) as proxy, node_through(proxy, database_url, "ch") as node:
        _, key = await make_org(real_store(node))
        auth = {"Authorization": f"Bearer {key}"}
        limits = httpx.Limits(max_connections=clients)
        async with httpx.AsyncClient(
            base_url=node.web.bound[0], headers=auth, timeout=10, limits=limits
        ) as http:

            async def client(name: str) -> None:
                nonlocal longest_409_s
                conflict_since: float | None = None
                while True:
                    try:
                        reply = await http.post(
                            "/api/v1/tasks",
                            headers={"Idempotency-Key": name},
                            json={"url": TARGET, "delay": "1h", "name": name},
                        )
                    except httpx.TransportError:
                        refused[0] = refused.get(0, 0) + 1
                        await trio.sleep(0.05)
                        continue
                    now = trio.current_time()
                    if reply.status_code == 409:
                        conflict_since = conflict_since or now
                        longest_409_s = max(longest_409_s, now - conflict_since)
                    else:
                        conflict_since = None
                    if reply.status_code == 202:
                        answers[name] = reply.json()
                        return
                    assert reply.status_code in (409, 503), reply.text
                    refused[reply.status_code] = refused.get(reply.status_code, 0) + 1
                    await trio.sleep(0.05)

            async def chaos() -> None:
                proxy.slow(0.05)
                for _ in range(4):
                    await trio.sleep(0.6)
                    proxy.reset()
                    await trio.sleep(0.3)
                    proxy.slow(0.05)
                await trio.sleep(0.5)
                proxy.pass_through()

            with trio.fail_after(60):
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(chaos)
                    for i in range(clients):
                        nursery.start_soon(client, f"client-{i}")

            assert refused.get(503, 0) > 0, "the faults never reached a client"
            for name, answer in answers.items():  # a repeat is a replay of the answer
                again = await http.post(
                    "/api/v1/tasks",
                    headers={"Idempotency-Key": name},
                    json={"url": TARGET, "delay": "1h", "name": name},
                )
                assert (again.status_code, again.json()) == (202, answer)

    assert len(answers) == clients
    # A key is only ever held by a live transaction: never longer than the database keeps a
    # silent one (plus the client's deadline for the request that held it).
    assert longest_409_s < TIMEOUTS.idle_in_transaction_ms / 1000 + DEADLINE_S + MARGIN_S
    async with raw_connection(database_url) as conn:
        tasks = await sql(conn, "select id, name from tasks")
        audited = await sql(
            conn, "select resource_id from audit_log where action = 'POST /api/v1/tasks'"
        )
        keys = await sql(conn, "select key, status from idempotency_keys")
        advisory = await sql(conn, "select pid from pg_locks where locktype = 'advisory'")
    assert sorted(t["name"] for t in tasks) == sorted(answers)  # one task per key
    by_name = {t["name"]: str(t["id"]) for t in tasks}
    for name, answer in answers.items():
        assert answer["data"]["task_id"] == by_name[name]
    assert sorted(a["resource_id"] for a in audited) == sorted(by_name.values())
    assert {k["status"] for k in keys} == {"done"} and len(keys) == clients
    assert advisory == []
