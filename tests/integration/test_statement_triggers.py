"""The statement triggers that send live events and keep the per-minute aggregate (migrations
011 to 013) handle a statement that changes thousands of rows: every id is sent once, in slices
far below NOTIFY's 8,000-byte limit, and the old and new transition tables are joined without
a nested loop (which made such a statement quadratic)."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

import trio
import trio_asyncio

from runlater.store.postgres import Store
from tests.helpers.db import raw_connection, sql
from tests.helpers.factories import make_org, once_task

PENDING = """
insert into executions (organization_id, task_id, source, priority, scheduled_for, host)
select e.organization_id, e.task_id, 'trigger', e.priority, now() + interval '1 hour', e.host
from executions e, generate_series(1, $2)
where e.id = $1
returning id
"""
FINISH_ALL = """
update executions set status = 'success', started_at = now(), finished_at = now(),
                      duration_ms = 20
where task_id = $1 and status = 'pending'
"""


async def pending_executions(store: Store, database_url: str, count: int) -> tuple[UUID, UUID]:
    """A task with ``count`` pending executions due in an hour; (organization, task)."""
    org, _ = await make_org(store)
    row = await store.insert_task(org, once_task("https://example.com/x"), 3600)
    async with raw_connection(database_url) as conn:
        await sql(conn, PENDING, row["execution_id"], count - 1)
    return org, row["id"]


async def test_one_statement_finishing_2000_executions_sends_each_id_once_in_small_slices(
    store: Store, database_url: str
) -> None:
    org, task = await pending_executions(store, database_url, 2000)
    payloads: list[str] = []
    async with raw_connection(database_url) as listening, raw_connection(database_url) as conn:
        await trio_asyncio.aio_as_trio(listening.add_listener)(
            "runlater_events", lambda _c, _pid, _channel, payload: payloads.append(payload)
        )
        ids = {str(r["id"]) for r in await sql(conn, "select id from executions")}
        await sql(conn, FINISH_ALL, task)
        with trio.fail_after(10):
            while sum(len(json.loads(p)["ids"]) for p in payloads) < 2000:
                await trio.sleep(0.01)
    notes: list[dict[str, Any]] = [json.loads(p) for p in payloads]
    assert {n["k"] for n in notes} == {"xf"}
    sent = [i for n in notes for i in n["ids"]]
    assert len(sent) == 2000 and set(sent) == ids  # every id, once
    assert all(len(p.encode()) < 8000 for p in payloads)
    assert [len(n["ids"]) for n in notes] == [150] * 13 + [50]
    [hour] = await store.execution_hours(org, 1)
    assert hour["success"] == 2000 and hour["durations"][1] == 2000  # 10 < 20 ms ≤ 25


async def test_the_transition_tables_are_joined_without_a_nested_loop(
    store: Store, database_url: str
) -> None:
    """auto_explain shows the plans of the trigger's statements (nested statements): with one
    row estimated per transition table, Postgres would pick a nested loop, n² for n rows."""
    _, task = await pending_executions(store, database_url, 50)
    plans: list[str] = []
    async with raw_connection(database_url) as conn:
        conn.add_log_listener(lambda _c, message: plans.append(message.message))
        for setting in (
            "load 'auto_explain'",
            "set auto_explain.log_min_duration = 0",
            "set auto_explain.log_nested_statements = on",
            "set auto_explain.log_level = notice",
        ):
            await sql(conn, setting)
        await sql(conn, FINISH_ALL, task)
        await sql(conn, "update tasks set name = 'renamed' where id = $1", task)
    joins = [p for p in plans if "changed_old o on o.id = n.id" in p]
    # executions: started, finished, the aggregate; tasks: deleted, updated.
    assert len(joins) == 5, plans
    assert not [p for p in joins if "Nested Loop" in p], joins
