"""The domain layer on its own: ``TaskService`` over a real store, with no web app and no HTTP.

Every front door (REST, batch, sync; later the dashboard and the QStash API) goes through these
calls, so the rules are checked here once: defaults, the schedule, what an edit writes, the URL
policy, and that a refused change writes nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

import pytest

from runlater.clock import ManualClock
from runlater.delivery.resolver import StaticResolver
from runlater.domain.service import TaskService
from runlater.domain.urls import UrlPolicy
from runlater.errors import InvalidInput, LimitExceeded, NotFound
from runlater.store.postgres import Store
from tests.helpers.factories import make_org

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
RESOLVER = StaticResolver({"hooks.example.com": ["93.184.216.34"], "inside.test": ["10.0.0.5"]})


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW)


@pytest.fixture
def tasks(store: Store, clock: ManualClock) -> TaskService:
    return TaskService(store, UrlPolicy(allow_private=False, resolver=RESOLVER), clock)


@pytest.fixture
async def org(store: Store) -> UUID:
    org_id, _key = await make_org(store, "Domain", tier="pro")
    return org_id


async def test_a_one_time_task_gets_the_defaults_and_its_first_execution(
    tasks: TaskService, store: Store, org: UUID
) -> None:
    created = await tasks.create(org, {"url": "https://hooks.example.com/a", "delay": "5m"})
    row = created.value
    assert created.warnings == []
    assert row["schedule_type"] == "once"
    stored = await store.get_task(org, row["id"])
    assert (stored["method"], stored["retry_attempts"], stored["timeout_ms"]) == ("POST", 5, 30000)
    assert stored["name"] == "POST https://hooks.example.com/a"
    # The delay counts from the database's clock at the insert.
    delay = row["execution_scheduled_for"] - stored["inserted_at"]
    assert 299 <= delay.total_seconds() <= 301


async def test_a_cron_task_gets_its_next_run_in_its_zone_and_no_retries(
    tasks: TaskService, org: UUID
) -> None:
    created = await tasks.create(
        org, {"url": "https://hooks.example.com/c", "cron": "0 9 * * *", "timezone": "Europe/Paris"}
    )
    row = created.value
    assert (row["method"], row["retry_attempts"], row["interval_minutes"]) == ("GET", 0, 1440)
    assert row["next_run_at"] == datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # 09:00 CET


async def test_an_edit_of_the_schedule_recomputes_the_next_run(
    tasks: TaskService, clock: ManualClock, org: UUID
) -> None:
    row = (
        await tasks.create(org, {"url": "https://hooks.example.com/c", "cron": "0 9 * * *"})
    ).value
    clock.advance(3600)
    edited = (await tasks.update(org, row["id"], {"cron": "30 13 * * *"})).value
    assert edited["cron_expression"] == "30 13 * * *"
    assert edited["next_run_at"] == datetime(2026, 3, 1, 13, 30, tzinfo=UTC)
    renamed = (await tasks.update(org, row["id"], {"name": "report"})).value
    assert renamed["next_run_at"] == edited["next_run_at"]  # nothing about the schedule changed


async def test_a_one_time_task_cannot_become_a_cron_task(tasks: TaskService, org: UUID) -> None:
    row = (await tasks.create(org, {"url": "https://hooks.example.com/a"})).value
    with pytest.raises(InvalidInput) as refused:
        await tasks.update(org, row["id"], {"cron": "* * * * *"})
    assert refused.value.code == "validation_error"
    assert refused.value.details == {
        "cron_expression": ["a one-time task cannot become a cron task"]
    }


async def test_urls_follow_the_policy_known_blocked_refused_unresolvable_warned(
    tasks: TaskService, store: Store, org: UUID
) -> None:
    with pytest.raises(InvalidInput) as refused:
        await tasks.create(
            org, {"url": "https://inside.test/x", "callback_url": "http://127.0.0.1/cb"}
        )
    assert refused.value.code == "url_not_allowed"
    assert set(refused.value.details or {}) == {"url", "callback_url"}
    assert (
        await store.list_tasks(org, schedule_type=None, queue=None, status=None, limit=10, offset=0)
        == []
    )  # nothing was written
    created = await tasks.create(org, {"url": "https://no-such-host.test/x"})
    assert [w.field for w in created.warnings] == ["url"]
    assert "does not resolve" in created.warnings[0].message


async def test_bad_timing_answers_with_its_own_code(tasks: TaskService, org: UUID) -> None:
    with pytest.raises(InvalidInput) as refused:
        await tasks.create(org, {"url": "https://hooks.example.com/a", "delay": "soon"})
    assert refused.value.code == "invalid_delay"
    assert "'30s', '5m'" in refused.value.message
    with pytest.raises(InvalidInput) as refused:
        await tasks.create(org, {"url": "https://hooks.example.com/a", "delya": "30s"})
    assert refused.value.details == {"delya": ["unknown field 'delya'; did you mean 'delay'?"]}


async def test_the_plan_limit_is_the_databases_answer(store: Store, clock: ManualClock) -> None:
    free_org, _ = await make_org(store, "Freebie", tier="free")
    tasks = TaskService(store, UrlPolicy(allow_private=False, resolver=RESOLVER), clock)
    with pytest.raises(LimitExceeded) as refused:
        await tasks.create(free_org, {"url": "https://hooks.example.com/c", "cron": "* * * * *"})
    assert refused.value.field == "cron_expression"


async def test_a_batch_keeps_item_order_and_its_queue(tasks: TaskService, org: UUID) -> None:
    created = await tasks.create_batch(
        org,
        {"url": "https://hooks.example.com/b", "queue": "mail", "items": [{"n": 1}, "two", None]},
    )
    row = created.value
    assert (row["queue"], row["created"]) == ("mail", 3)
    assert len(row["task_ids"]) == len(row["execution_ids"]) == 3


async def test_sync_creates_edits_and_leaves_alone_by_name(
    tasks: TaskService, store: Store, org: UUID
) -> None:
    declared = {
        "tasks": [
            {"name": "a", "url": "https://hooks.example.com/a", "cron": "0 * * * *"},
            {"name": "b", "url": "https://hooks.example.com/b", "cron": "0 0 * * *"},
        ]
    }
    first = (await tasks.sync(org, declared, dry_run=False)).value
    assert (sorted(first.created), first.updated, first.unchanged) == (["a", "b"], [], [])
    declared["tasks"][1]["cron"] = "0 6 * * *"
    second = (await tasks.sync(org, declared, dry_run=True)).value
    assert (second.created, second.updated, second.unchanged) == ([], ["b"], ["a"])
    rows = {
        r["name"]: r
        for r in await store.list_tasks(
            org, schedule_type=None, queue=None, status=None, limit=10, offset=0
        )
    }
    assert rows["b"]["cron_expression"] == "0 0 * * *"  # the dry run changed nothing


async def test_another_organizations_task_is_not_found(
    tasks: TaskService, store: Store, org: UUID
) -> None:
    row = (
        await tasks.create(org, {"url": "https://hooks.example.com/a", "cron": "0 * * * *"})
    ).value
    other, _ = await make_org(store, "Other")
    with pytest.raises(NotFound):
        await tasks.update(other, row["id"], {"name": "mine now"})
    with pytest.raises(NotFound):
        await tasks.delete(other, row["id"])
    assert (await store.get_task(org, row["id"]))["name"] == "GET https://hooks.example.com/a"
