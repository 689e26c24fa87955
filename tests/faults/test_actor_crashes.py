"""An actor raising mid-loop is restarted by its supervisor, and no execution is lost or run
twice. The fault is injected into the real store (FaultyStore): one call raises a
non-transient StoreError, which the actor does not handle, so it crashes — except the pool's
recorder, which isolates a refused batch row by row instead of dropping deliveries."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest
import trio

from runlater.config import Settings
from runlater.delivery.transport import TrioTransport
from runlater.errors import Conflict, StoreError, StoreUnavailable
from runlater.node import build_node
from runlater.store.postgres import Store
from tests.helpers.factories import cron_task, make_org, once_task
from tests.helpers.faulty import FaultyStore
from tests.helpers.sink import serve_sink

FAST = Settings(
    host="127.0.0.1",
    port=0,
    allow_private_targets=True,
    min_workers=1,
    max_workers=8,
    poll_interval_s=0.05,
    rescue_interval_s=0.2,
    leader_lease_s=2,
    leader_renew_s=0.2,
    lease_margin_s=1,
    restart_max=50,
)


@pytest.mark.parametrize(
    ("logged", "method"),
    [
        ("actor crashed supervisor=root actor=pool", "claim"),
        ("actor=pool recorder batch refused", "complete"),
        ("actor crashed supervisor=root actor=rescuer", "rescue_expired"),
        ("actor crashed supervisor=root actor=elector", "acquire_leader_lease"),
        ("actor crashed supervisor=leader actor=scheduler", "due_cron_tasks"),
        ("actor crashed supervisor=leader actor=scheduler", "advance_cron"),
    ],
)
async def test_crashed_actor_is_restarted_and_nothing_is_lost(
    store: Store, caplog: pytest.LogCaptureFixture, logged: str, method: str
) -> None:
    org, _ = await make_org(store)
    faulty = FaultyStore(store)
    faulty.fail(method, lambda n: n == 2, StoreError(f"injected fault in {method}"))
    async with serve_sink() as sink, TrioTransport(allow_private=True) as http:
        once_ids = []
        for i in range(10):
            row = await store.insert_task(org, once_task(f"{sink.url}/once/{i}"), 0)
            once_ids.append(row["execution_id"])
        slot = (datetime.now(UTC) - timedelta(seconds=5)).replace(microsecond=0)
        cron = await store.insert_task(
            # due now; its next slot is next year, so the test sees exactly this one
            org,
            cron_task(f"{sink.url}/cron", "0 0 1 1 *", slot.isoformat()),
            None,
        )
        node = build_node(FAST, faulty, http)
        with caplog.at_level(logging.ERROR):
            async with trio.open_nursery() as nursery:
                await nursery.start(node.supervisor.run)
                with trio.fail_after(20):
                    while True:
                        crashed = any(logged in r.getMessage() for r in caplog.records)
                        done = {r.path for r in sink.requests}
                        if crashed and len(done) == 11 and faulty.calls.get(method, 0) > 2:
                            break
                        await trio.sleep(0.05)
                    while not await _all_recorded(store, org, once_ids):
                        await trio.sleep(0.05)
                nursery.cancel_scope.cancel()
    paths = sorted(r.path for r in sink.requests)
    assert paths == sorted([*(f"/once/{i}" for i in range(10)), "/cron"]), paths
    runs = await store.list_task_executions(org, cron["id"], status=None, limit=10, offset=0)
    assert [r["scheduled_for"] for r in runs] == [slot]


async def test_a_refused_claim_is_retried_without_crashing_the_pool(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """The queue backstop (a unique index on running rows per queue) answers Conflict; the pool
    claims again after a pause instead of crashing (crashes count toward stopping the node)."""
    org, _ = await make_org(store)
    faulty = FaultyStore(store)
    faulty.fail("claim", lambda n: n in (1, 2), Conflict("duplicate key: executions_one_running"))
    async with serve_sink() as sink, TrioTransport(allow_private=True) as http:
        ids = [
            (await store.insert_task(org, once_task(f"{sink.url}/once/{i}"), 0))["execution_id"]
            for i in range(5)
        ]
        node = build_node(FAST, faulty, http)
        with caplog.at_level(logging.WARNING):
            async with trio.open_nursery() as nursery:
                await nursery.start(node.supervisor.run)
                with trio.fail_after(20):
                    while not await _all_recorded(store, org, ids):
                        await trio.sleep(0.05)
                nursery.cancel_scope.cancel()
    assert faulty.calls["claim"] > 2  # the work was claimed after both refusals
    messages = [r.getMessage() for r in caplog.records]
    assert any("actor=pool pass failed" in m for m in messages)
    assert not any("actor crashed supervisor=root actor=pool" in m for m in messages)


async def test_a_restarted_pool_is_a_new_instance_and_writes_what_the_old_one_held(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """The pool's recorder crashes (a bug) with delivered outcomes in hand, and while the pool
    hands back the database is away, so they cannot be written. The supervisor builds a new
    instance from the factory, which first writes the outcomes the crashed one carried over:
    every execution is delivered once and recorded once. Without the carry the leases would
    run out, the rescuer would hand the executions out again, and the sink would see each
    one twice; without a fresh instance ``node.pool`` would stay the crashed one."""
    org, _ = await make_org(store)
    faulty = FaultyStore(store)

    def outage(n: int) -> Exception:
        return RuntimeError("injected bug in the recorder") if n == 1 else StoreUnavailable("away")

    faulty.fail("complete", lambda n: True, outage)
    async with serve_sink() as sink, TrioTransport(allow_private=True) as http:
        ids = [
            (await store.insert_task(org, once_task(f"{sink.url}/once/{i}"), 0))["execution_id"]
            for i in range(5)
        ]
        node = build_node(FAST, faulty, http)
        with caplog.at_level(logging.INFO):
            async with trio.open_nursery() as nursery:
                await nursery.start(node.supervisor.run)
                first = node.pool
                with trio.fail_after(20):
                    while node.pool is first:
                        await trio.sleep(0.01)
                    faulty.heal("complete")  # the database is back
                    while not await _all_recorded(store, org, ids):
                        await trio.sleep(0.05)
                    await trio.sleep(FAST.lease_margin_s + 5 + 1)  # past every lease's expiry
                nursery.cancel_scope.cancel()
    assert sorted(r.path for r in sink.requests) == sorted(f"/once/{i}" for i in range(5))
    assert node.pool_carry.outcomes == [] and node.pool_carry.leases == {}
    messages = [r.getMessage() for r in caplog.records]
    assert any("actor crashed supervisor=root actor=pool" in m for m in messages)
    settled = [m for m in messages if "settling what the last instance left" in m]
    assert settled and "outcomes=0 " not in settled[0]  # it carried outcomes over


async def _all_recorded(store: Store, org: UUID, ids: Sequence[UUID]) -> bool:
    for execution_id in ids:
        row = await store.get_execution(org, execution_id)
        if row["status"] != "success":
            return False
    return True
