"""Group commit (runlater/web/group_commit.py) of audit entries and of the responses kept for
Idempotency-Keys: concurrent calls share one statement, and no entry of a call is lost — not
to a bad neighbour, not to a cancelled caller."""

from __future__ import annotations

import logging
from uuid import UUID

import pytest
import trio
import trio.testing

from runlater.clock import SystemClock
from runlater.config import Settings
from runlater.errors import StoreUnavailable
from runlater.store.access import AuditRecord
from runlater.store.postgres import Store
from runlater.web.app import create_app
from runlater.web.audit_writer import AuditWriter
from tests.helpers.factories import make_org
from tests.helpers.faulty import FaultyStore


def _entry(org_id: UUID, resource: str, action: str = "POST /api/v1/tasks") -> AuditRecord:
    return AuditRecord(org_id, "api_key", None, action, resource, 202, "192.0.2.1")


async def _resources(store: Store) -> list[str]:
    rows = await store._run(lambda c: c.fetch("select resource_id from audit_log"))
    return sorted(r["resource_id"] for r in rows)


async def test_concurrent_calls_share_inserts_and_each_returns_once_committed(
    store: Store,
) -> None:
    org_id, _ = await make_org(store)
    writer = AuditWriter(store)
    seen_after_write: list[int] = []

    async def call(i: int) -> None:
        await writer.write(_entry(org_id, f"r{i:02}"))
        seen = await store._run(
            lambda c: c.fetchval(
                "select count(*) from audit_log where resource_id = $1", f"r{i:02}"
            )
        )
        seen_after_write.append(seen)

    async with trio.open_nursery() as nursery:
        for i in range(50):
            nursery.start_soon(call, i)
    assert await _resources(store) == [f"r{i:02}" for i in range(50)]
    assert seen_after_write == [1] * 50  # committed before write() returned
    assert writer.flushes <= 3  # not one INSERT per call


class GatedStore:
    """The real store, whose first audit insert waits until the test opens the gate (so the
    next calls' entries gather in one batch behind it)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.entered = trio.Event()
        self.gate = trio.Event()

    async def record_audit_entries(self, entries: list[AuditRecord]) -> None:
        if not self.entered.is_set():
            self.entered.set()
            await self.gate.wait()
        await self.store.record_audit_entries(entries)


async def test_a_bad_entry_does_not_take_the_others_with_it(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    org_id, _ = await make_org(store)
    gated = GatedStore(store)
    writer = AuditWriter(gated)
    entries = [_entry(org_id, "ok-1"), _entry(org_id, "bad", action=""), _entry(org_id, "ok-2")]
    with caplog.at_level(logging.ERROR, logger="runlater.web.audit"):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(writer.write, _entry(org_id, "ok-0"))
            await gated.entered.wait()
            for entry in entries:
                nursery.start_soon(writer.write, entry)
            await trio.testing.wait_all_tasks_blocked()
            gated.gate.set()  # the three go in one batch, which the database refuses
    assert writer.flushes == 2
    assert await _resources(store) == ["ok-0", "ok-1", "ok-2"]
    failures = [r.getMessage() for r in caplog.records if "not written" in r.getMessage()]
    assert len(failures) == 1 and "resource=bad" in failures[0]


async def test_the_entry_of_a_cancelled_caller_is_still_written(store: Store) -> None:
    org_id, _ = await make_org(store)
    writer = AuditWriter(store)
    with trio.CancelScope() as scope:
        scope.cancel()  # the caller is cancelled before and while it writes
        await writer.write(_entry(org_id, "cancelled-caller"))
    assert await _resources(store) == ["cancelled-caller"]


async def test_an_unavailable_database_is_logged_entry_by_entry(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    org_id, _ = await make_org(store)
    faulty = FaultyStore(store)
    faulty.fail("record_audit_entries", lambda n: True, StoreUnavailable("database is down"))
    writer = AuditWriter(faulty)
    with caplog.at_level(logging.ERROR, logger="runlater.web.audit"):
        async with trio.open_nursery() as nursery:
            for name in ("a", "b", "c"):
                nursery.start_soon(writer.write, _entry(org_id, name))
    logged = sorted(
        r.getMessage().split("resource=")[1].split()[0]
        for r in caplog.records
        if "not written" in r.getMessage()
    )
    assert logged == ["a", "b", "c"]
    assert await _resources(store) == []


async def test_concurrent_idempotent_calls_keep_their_responses_in_shared_updates(
    store: Store,
) -> None:
    _, key = await make_org(store)
    app = create_app(store, Settings(allow_private_targets=True), SystemClock())
    client = app.test_client()
    task = {"url": "http://127.0.0.1:9999/x", "delay": "1h"}
    first: dict[str, bytes] = {}

    async def call(i: int) -> None:
        headers = {"Authorization": f"Bearer {key}", "Idempotency-Key": f"k{i}"}
        response = await client.post("/api/v1/tasks", headers=headers, json=task)
        assert response.status_code == 202
        first[f"k{i}"] = await response.get_data()

    async with trio.open_nursery() as nursery:
        for i in range(20):
            nursery.start_soon(call, i)
    assert app.config["IDEMPOTENCY_FINISHES"].flushes < 20  # not one UPDATE per call
    for name, body in first.items():  # each stored before its response went out
        headers = {"Authorization": f"Bearer {key}", "Idempotency-Key": name}
        again = await client.post("/api/v1/tasks", headers=headers, json=task)
        assert (again.status_code, await again.get_data()) == (202, body)
    assert await store._run(lambda c: c.fetchval("select count(*) from tasks")) == 20
