"""Janitor (leader-only retention) against real Postgres, driven by ``run_once(now)``.

History is made for real (tasks created, delivered to a local sink, claimed, cancelled); time
is moved by handing the janitor a later ``now``, as its clock would after days of running.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest

from runlater.actors import janitor as janitor_module
from runlater.actors.janitor import Janitor
from runlater.actors.worker import Worker
from runlater.clock import ManualClock
from runlater.delivery.client import Deliverer
from runlater.delivery.transport import TrioTransport
from runlater.domain.monitors import draft_monitor
from runlater.store.monitors import Ping
from runlater.store.postgres import Store
from tests.helpers.db import raw_connection, sql
from tests.helpers.factories import make_org, once_task
from tests.helpers.sink import Sink, serve_sink

DAY = timedelta(days=1)


async def deliver_due(store: Store, limit: int = 50) -> None:
    async with TrioTransport(allow_private=True) as http:
        worker = Worker(store, Deliverer(http), node="t", lease_margin_s=60)
        await worker.run_once(limit)


async def history(store: Store, sink: Sink, org: UUID) -> dict[str, UUID]:
    """One execution in each state, by name: finished ones (success, failed, cancelled) and
    unfinished ones (pending far ahead, running)."""
    made: dict[str, UUID] = {}

    async def once(name: str, url: str, delay_s: float | None = 0, **extra: Any) -> UUID:
        row = await store.insert_task(org, once_task(url, name=name, **extra), delay_s)
        made[name] = row["execution_id"]
        return row["id"]

    await once("success", sink.url + "/ok")
    await once("failed", sink.url + "/status/404")
    await deliver_due(store)
    await once("running", sink.url + "/ok")
    claimed, _ = await store.claim(1, "other-node", 600)  # its node is still delivering it
    assert [c.id for c in claimed] == [made["running"]]
    cancelled = await once("cancelled", sink.url + "/ok", delay_s=3600)
    await store.delete_task(org, cancelled)
    await once("pending", sink.url + "/ok", delay_s=30 * 86400)
    return made


async def statuses(dsn: str, ids: dict[str, UUID]) -> dict[str, str]:
    """The remaining executions among ``ids``: name -> status."""
    names = {v: k for k, v in ids.items()}
    async with raw_connection(dsn) as conn:
        rows = await sql(
            conn, "select id, status from executions where id = any($1::uuid[])", list(names)
        )
    return {names[r["id"]]: r["status"] for r in rows}


@pytest.fixture
def now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
def janitor(store: Store, now: datetime) -> Janitor:
    return Janitor(store, ManualClock(now), interval_s=300)


async def test_finished_history_is_deleted_after_each_plans_retention(
    store: Store, database_url: str, janitor: Janitor, now: datetime
) -> None:
    """Free keeps 7 days, pro 30; pending and running executions are never deleted."""
    free, _ = await make_org(store, "Freebie", tier="free")
    pro, _ = await make_org(store, "Prolab", tier="pro")
    async with serve_sink() as sink:
        free_runs = await history(store, sink, free)
        pro_runs = await history(store, sink, pro)
    everything = {
        "success": "success",
        "failed": "failed",
        "running": "running",
        "cancelled": "cancelled",
        "pending": "pending",
    }
    unfinished = {"running": "running", "pending": "pending"}

    assert (await janitor.run_once(now + 6 * DAY)).executions_deleted == 0
    assert await statuses(database_url, free_runs) == everything

    assert (await janitor.run_once(now + 8 * DAY)).executions_deleted == 3
    assert await statuses(database_url, free_runs) == unfinished
    assert await statuses(database_url, pro_runs) == everything

    assert (await janitor.run_once(now + 29 * DAY)).executions_deleted == 0
    assert (await janitor.run_once(now + 31 * DAY)).executions_deleted == 3
    assert await statuses(database_url, pro_runs) == unfinished
    assert await statuses(database_url, free_runs) == unfinished
    # Only history goes: the tasks stay.
    async with raw_connection(database_url) as conn:
        assert (await sql(conn, "select count(*) as n from tasks"))[0]["n"] == 10


async def test_an_execution_whose_callback_is_still_being_sent_is_kept(
    store: Store, database_url: str, janitor: Janitor, now: datetime
) -> None:
    """Callbacks reference executions (deleted with them): an undelivered one keeps its
    execution past retention; once it is done both go."""
    org, _ = await make_org(store, "Freebie", tier="free")
    async with serve_sink() as sink:
        row = await store.insert_task(
            org, once_task(sink.url + "/ok", callback_url=sink.url + "/callback"), 0
        )
        await deliver_due(store)
    execution = row["execution_id"]
    callback = await store.get_callback_for_execution(org, execution)
    assert callback is not None and callback["status"] == "pending"

    assert (await janitor.run_once(now + 8 * DAY)).executions_deleted == 0
    async with raw_connection(database_url) as conn:
        await sql(
            conn,
            "update callbacks set status = 'delivered', finished_at = now()"
            " where execution_id = $1",
            execution,
        )
    assert (await janitor.run_once(now + 8 * DAY)).executions_deleted == 1
    assert await store.get_callback_for_execution(org, execution) is None


async def test_deletes_in_bounded_batches_and_bounded_passes(
    store: Store, database_url: str, janitor: Janitor, now: datetime, monkeypatch: Any
) -> None:
    org, _ = await make_org(store, "Freebie", tier="free")
    task = await store.insert_task(org, once_task("http://127.0.0.1:8080/x"), 3600)
    async with raw_connection(database_url) as conn:
        await sql(
            conn,
            "insert into executions (organization_id, task_id, source, status, priority,"
            " scheduled_for, finished_at, error_message)"
            " select $1, $2, 'trigger', 'cancelled', 1, now(), now(), 'old'"
            " from generate_series(1, 7)",
            org,
            task["id"],
        )
    assert await store.delete_expired_executions(now + 8 * DAY, 3) == 3

    monkeypatch.setattr(janitor_module, "BATCH", 2)
    monkeypatch.setattr(janitor_module, "MAX_BATCHES", 1)
    assert (await janitor.run_once(now + 8 * DAY)).executions_deleted == 2  # one batch a pass
    monkeypatch.setattr(janitor_module, "MAX_BATCHES", 100)
    assert (await janitor.run_once(now + 8 * DAY)).executions_deleted == 2  # 2, then 0
    assert await store.delete_expired_executions(now + 8 * DAY, 3) == 0
    # The task's pending first execution is still there.
    runs = await store.list_task_executions(org, task["id"], status=None, limit=10, offset=0)
    assert [r["status"] for r in runs] == ["pending"]


async def test_expired_idempotency_keys_are_purged(
    store: Store, database_url: str, janitor: Janitor
) -> None:
    org, _ = await make_org(store)
    async with raw_connection(database_url) as conn:
        await sql(
            conn,
            "insert into idempotency_keys (organization_id, key, method, path, request_hash,"
            " created_at) values ($1, 'old', 'POST', '/api/v1/tasks', 'h', now() - interval"
            " '25 hours'), ($1, 'new', 'POST', '/api/v1/tasks', 'h', now() - interval '23 hours')",
            org,
        )
        assert (await janitor.run_once()).idempotency_keys_deleted == 1
        keys = await sql(conn, "select key from idempotency_keys")
    assert keys == [{"key": "new"}]


async def test_backoffs_of_hosts_not_called_for_a_day_are_deleted(
    store: Store, database_url: str, janitor: Janitor
) -> None:
    """A host that failed and was never called again keeps no row for ever; one whose backoff
    ended recently keeps its failure count."""
    org, _ = await make_org(store)
    async with raw_connection(database_url) as conn:
        await sql(
            conn,
            "insert into host_backoffs (organization_id, host, failures, until) values"
            " ($1, 'gone.example', 3, now() - interval '25 hours'),"
            " ($1, 'recent.example', 3, now() - interval '1 hour')",
            org,
        )
        assert (await janitor.run_once()).host_backoffs_deleted == 1
        hosts = await sql(conn, "select host from host_backoffs")
    assert hosts == [{"host": "recent.example"}]


async def test_monitor_pings_are_kept_for_the_plans_retention(store: Store) -> None:
    """A free organization's pings go after 7 days, a pro one's after 30; the monitor stays."""
    now = datetime(2026, 6, 1, tzinfo=UTC)
    tokens = {}
    for name, tier in (("Free Pings", "free"), ("Pro Pings", "pro")):
        org, _ = await make_org(store, name, tier=tier)
        row = await store.insert_monitor(
            org, draft_monitor({"name": "job", "interval_seconds": 3600}, now)
        )
        tokens[tier] = (org, row)
        for age_days in (40, 20, 1):
            await store.ping_monitor(
                Ping(
                    UUID(str(row["ping_token"])),
                    "success",
                    None,
                    None,
                    now - timedelta(days=age_days),
                    "GET",
                    None,
                    None,
                    b"",
                    False,
                )
            )
    result = await Janitor(store, ManualClock(now), interval_s=300).run_once(now)
    assert result.monitor_pings_deleted == 3  # free: 40 and 20 days; pro: 40 days
    for tier, kept in (("free", 1), ("pro", 2)):
        org, row = tokens[tier]
        pings = await store.list_monitor_pings(org, row["id"], limit=10, offset=0)
        assert len(pings) == kept, tier
