"""A row held by another transaction (a request in flight, maybe on a node that vanished)
stalls only the work that needs that row, never every organization's."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import trio
import trio_asyncio

from runlater.actors.pool import Recorder
from runlater.actors.scheduler import Scheduler
from runlater.clock import SystemClock
from runlater.store.postgres import Store
from runlater.store.records import ClaimedExecution, Outcome
from runlater.store.session import DbTimeouts
from tests.helpers.db import raw_connection, sql
from tests.helpers.factories import cron_task, make_org, once_task

URL = "http://127.0.0.1:9999/x"


def success(claimed: ClaimedExecution) -> Outcome:
    return Outcome(
        execution_id=claimed.id,
        lease_token=claimed.lease_token,
        status="success",
        status_code=200,
        duration_ms=5,
        response_body="ok",
        error_message=None,
        organization_id=claimed.organization_id,
    )


async def status(dsn: str, execution_id: UUID) -> str:
    async with raw_connection(dsn) as conn:
        rows = await sql(conn, "select status from executions where id = $1", execution_id)
    return rows[0]["status"]


async def test_the_recorder_writes_other_organizations_past_a_locked_row(
    aio_loop: object, database_url: str
) -> None:
    """One batch of outcomes for two organizations; organization X's execution row is held by
    another session. Y's outcome is recorded while X's row is still held (the batch is split
    by organization after the lock timeout, instead of waiting or retrying as a whole), and
    X's outcome is recorded once the row is free (retried, not dropped for a re-delivery)."""
    store = await Store.open(database_url, pool_size=4, timeouts=DbTimeouts(lock_ms=200))
    try:
        org_x, _ = await make_org(store, "X Corp")
        org_y, _ = await make_org(store, "Y Corp")
        for org in (org_x, org_y):
            await store.insert_task(org, once_task(URL), 0)
        claimed, _ = await store.claim(2, "node", 30)
        by_org = {c.organization_id: c for c in claimed}
        x, y = by_org[org_x], by_org[org_y]
        send, recv = trio.open_memory_channel[Outcome](4)
        unrecorded: dict[UUID, UUID] = {c.id: c.lease_token for c in claimed}
        recorder = Recorder(store, recv, unrecorded)

        async with raw_connection(database_url) as holder:
            call: Any = trio_asyncio.aio_as_trio
            await call(holder.execute)("begin")
            await call(holder.execute)("select 1 from executions where id = $1 for update", x.id)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(recorder.run)
                await send.send(success(x))
                await send.send(success(y))
                with trio.fail_after(10):
                    while await status(database_url, y.id) != "success":
                        await trio.sleep(0.02)
                assert await status(database_url, x.id) == "running"  # still held
                assert list(unrecorded) == [x.id]
                await call(holder.execute)("commit")
                with trio.fail_after(10):
                    while await status(database_url, x.id) != "success":
                        await trio.sleep(0.02)
                assert unrecorded == {}
                send.close()
    finally:
        await store.close()


async def test_the_scheduler_runs_other_organizations_past_a_locked_counter(
    aio_loop: object, database_url: str
) -> None:
    """Organization X's monthly usage counter is held by a transaction in flight (a request
    that created work for X). The leader's pass over all due cron tasks meets that lock: it
    splits by organization, so Y's run is created at once, and X's in the pass after the
    counter is free."""
    store = await Store.open(database_url, pool_size=4, timeouts=DbTimeouts(lock_ms=200))
    try:
        org_x, _ = await make_org(store, "X Corp", tier="free")
        org_y, _ = await make_org(store, "Y Corp", tier="free")
        await store.insert_task(org_x, once_task(URL), 0)  # X's counter row exists now
        due = datetime.now(UTC).replace(minute=0, second=0, microsecond=0).isoformat()
        tasks = {}
        for org in (org_x, org_y):
            row = await store.insert_task(
                org, cron_task(URL, "0 * * * *", due, interval_minutes=60), None
            )
            tasks[org] = row["id"]
        scheduler = Scheduler(store, SystemClock(), misfire_grace_s=3600)

        async def runs(task_id: UUID) -> int:
            async with raw_connection(database_url) as conn:
                rows = await sql(conn, "select 1 from executions where task_id = $1", task_id)
            return len(rows)

        async with raw_connection(database_url) as holder:
            call: Any = trio_asyncio.aio_as_trio
            await call(holder.execute)("begin")
            await call(holder.execute)(
                "select 1 from usage_counters where organization_id = $1 for update", org_x
            )
            result = await scheduler.run_once()
            assert (result.created, result.skipped) == (1, 1)
            assert (await runs(tasks[org_x]), await runs(tasks[org_y])) == (0, 1)
            await call(holder.execute)("commit")
        result = await scheduler.run_once()
        assert (result.created, result.skipped) == (1, 0)
        assert (await runs(tasks[org_x]), await runs(tasks[org_y])) == (1, 1)
    finally:
        await store.close()
