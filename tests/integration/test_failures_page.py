"""The failures page (the dead-letter queue): the last failed attempt of each chain, grouped by
task and reason; retrying selected or all shown. More in test_dlq_page.py."""

from __future__ import annotations

from uuid import UUID

from runlater.clock import SystemClock
from runlater.config import Settings
from runlater.store.postgres import Store
from runlater.web.app import create_app
from tests.helpers.dashboard import Visitor, sign_in
from tests.helpers.db import raw_connection, sql
from tests.helpers.factories import make_org, once_task

OWNER = "owner@acme.test"


def visitor(store: Store) -> Visitor:
    return Visitor(create_app(store, Settings(), SystemClock()).test_client())


async def failed(store: Store, database_url: str, org: UUID, name: str, reason: str) -> UUID:
    """A task whose first execution failed with ``reason`` (as a recorder would write it)."""
    row = await store.insert_task(org, once_task(f"https://example.com/{name}", name=name), 0)
    async with raw_connection(database_url) as conn:
        await sql(
            conn,
            "update executions set status = 'failed', started_at = now(), finished_at = now(),"
            " error_message = $2 where id = $1",
            row["execution_id"],
            reason,
        )
    execution: UUID = row["execution_id"]
    return execution


async def letter(database_url: str, execution: UUID) -> UUID:
    """The dead letter of a failed execution."""
    async with raw_connection(database_url) as conn:
        rows = await sql(conn, "select id from dead_letters where execution_id = $1", execution)
    found: UUID = rows[0]["id"]
    return found


async def test_failures_are_grouped_and_retried_selected_or_all(
    store: Store, database_url: str
) -> None:
    org, _ = await make_org(store)
    a1 = await failed(store, database_url, org, "sync-a", "connection refused")
    await failed(store, database_url, org, "sync-a", "connection refused")
    b = await failed(store, database_url, org, "sync-b", "timed out after 30 s")
    v = visitor(store)
    await sign_in(store, v, OWNER)
    page = await v.get("/failures")
    assert "3 failed or timed-out executions" in page.text
    assert page.text.count('class="group"') == 3  # two tasks named sync-a are two tasks
    assert "connection refused · 1 execution" in page.text
    a1_letter, b_letter = await letter(database_url, a1), await letter(database_url, b)
    retried = await v.post("/failures/retry", {"dead_letter_id": str(a1_letter)})
    assert retried.status == 303
    page = await v.get("/failures")
    assert "2 failed or timed-out executions" in page.text and "1 retry in progress" in page.text
    assert str(a1) not in page.text  # its chain has a newer attempt now
    chain = await store.list_task_executions(
        org, (await store.get_execution(org, a1))["task_id"], status=None, limit=10, offset=0
    )
    assert sorted(e["attempt"] for e in chain) == [1, 2]
    everything = await v.post("/failures/retry", {"all": "1", "shown_id": str(b_letter)})
    assert everything.status == 303
    assert str(b) not in (await v.get("/failures")).text
    entries = await store.search_audit_log(
        org, action="failures", actor_type="user", limit=5, offset=0
    )
    assert [e["resource_id"] for e in entries] == [str(b_letter), str(a1_letter)]


async def test_a_retry_of_letters_no_longer_there_retries_what_is_left(
    store: Store, database_url: str
) -> None:
    org, _ = await make_org(store)
    first = await letter(database_url, await failed(store, database_url, org, "one", "HTTP 500"))
    pending = await store.insert_task(org, once_task("https://example.com/p"), 3600)
    v = visitor(store)
    await sign_in(store, v, OWNER)
    await v.get("/failures")
    response = await v.client.post(
        "/failures/retry",
        form=[
            ("csrf_token", (await v.get("/failures")).csrf),
            ("dead_letter_id", str(first)),
            ("dead_letter_id", str(pending["execution_id"])),  # not a dead letter
        ],
        headers={"Origin": v.origin},
    )
    assert response.status_code == 303
    assert await store.count_retries_in_flight(org) == 1
    gone = await v.post("/failures/retry", {"dead_letter_id": str(first)})
    assert gone.status == 404  # nothing named is in the queue (any more)
    assert (await v.post("/failures/retry", {}, csrf=(await v.get("/failures")).csrf)).status == 422
