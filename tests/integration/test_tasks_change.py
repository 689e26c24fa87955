"""Changing tasks: PATCH/PUT, DELETE, trigger, moving a one-time task (docs/api.md).

Requests go through quart's test client into the real app, on a real Postgres database (a
fresh clone per test). Deliveries are real HTTP requests to a local sink."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from runlater.clock import ManualClock
from runlater.cron import CronSchedule
from runlater.store.postgres import Store
from tests.helpers.api import (
    TARGET,
    TASK_KEYS,
    Api,
    Reply,
    assert_error,
    create_cron,
    create_once,
    deliver_due,
    executions,
    get_task,
    list_ids,
    make_app,
    near,
    parse_ts,
)
from tests.helpers.sink import serve_sink

# ------------------------------------------------------------------------- PATCH / PUT /tasks


@pytest.fixture(params=["PATCH", "PUT"])
def edit(request: pytest.FixtureRequest, api: Api) -> Any:
    """PATCH and PUT behave the same: ``await edit(task_id, {...})``."""

    async def call(task_id: str, payload: Any) -> Reply:
        return await api.call(request.param, f"/tasks/{task_id}", json=payload)

    return call


async def test_edit_returns_the_task(api: Api, edit: Any) -> None:
    task = await create_cron(api, name="before")
    reply = await edit(task["id"], {"name": "after", "headers": {"X-New": "1"}, "queue": "q"})
    assert reply.status == 200
    assert set(reply.body) == {"data"}
    data = reply.body["data"]
    assert set(data) == TASK_KEYS
    assert (data["name"], data["headers"], data["queue"]) == ("after", {"X-New": "1"}, "q")
    assert data["next_run_at"] == task["next_run_at"]
    assert data["inserted_at"] == task["inserted_at"]
    assert parse_ts(data["updated_at"]) >= parse_ts(task["updated_at"])
    assert await get_task(api, task["id"]) == data


async def test_edit_accepts_a_wrapped_body(api: Api, edit: Any) -> None:
    task = await create_cron(api)
    reply = await edit(task["id"], {"task": {"name": "wrapped", "body": {"a": 1}}})
    assert reply.status == 200
    assert reply.body["data"]["name"] == "wrapped"
    assert json.loads(reply.body["data"]["body"]) == {"a": 1}


async def test_edit_can_clear_optional_fields(api: Api, edit: Any) -> None:
    task = await create_cron(api, queue="q", body="b", callback_url=TARGET)
    reply = await edit(task["id"], {"queue": None, "body": None, "callback_url": None})
    assert reply.status == 200
    data = reply.body["data"]
    assert (data["queue"], data["body"], data["callback_url"]) == (None, None, None)


@pytest.mark.parametrize("key", ["cron", "cron_expression"])
async def test_changing_the_cron_recomputes_next_run(
    api: Api, clock: ManualClock, edit: Any, key: str
) -> None:
    task = await create_cron(api, "0 9 * * *", timezone="Europe/Amsterdam")
    clock.advance(3 * 3600 + 7 * 60)
    reply = await edit(task["id"], {key: "15 14 * * 2"})
    assert reply.status == 200
    data = reply.body["data"]
    assert data["cron_expression"] == "15 14 * * 2"
    assert data["timezone"] == "Europe/Amsterdam"
    expected = CronSchedule("15 14 * * 2", "Europe/Amsterdam").next_after(clock.now())
    assert parse_ts(data["next_run_at"]) == expected


async def test_changing_the_timezone_recomputes_next_run(
    api: Api, clock: ManualClock, edit: Any
) -> None:
    task = await create_cron(api, "0 9 * * *")
    reply = await edit(task["id"], {"timezone": "America/New_York"})
    assert reply.status == 200
    expected = CronSchedule("0 9 * * *", "America/New_York").next_after(clock.now())
    assert parse_ts(reply.body["data"]["next_run_at"]) == expected
    assert parse_ts(reply.body["data"]["next_run_at"]) != parse_ts(task["next_run_at"])


async def test_re_enabling_a_cron_task_recomputes_next_run(
    api: Api, clock: ManualClock, edit: Any
) -> None:
    task = await create_cron(api, "*/15 * * * *")
    assert (await edit(task["id"], {"enabled": False})).body["data"]["enabled"] is False
    clock.advance(5 * 3600)
    data = (await edit(task["id"], {"enabled": True})).body["data"]
    expected = CronSchedule("*/15 * * * *").next_after(clock.now())
    assert data["enabled"] is True
    assert parse_ts(data["next_run_at"]) == expected


async def test_editing_a_finished_one_time_task_does_not_rerun_it(
    api: Api, store: Store, edit: Any
) -> None:
    async with serve_sink() as sink:
        data = await create_once(api, url=sink.url + "/first", retry_attempts=0)
        assert (await deliver_due(store)).succeeded == 1
        changes = {"name": "edited", "url": sink.url + "/second", "body": "new", "enabled": True}
        reply = await edit(data["task_id"], changes)
        assert reply.status == 200
        assert reply.body["data"]["url"] == sink.url + "/second"
        assert parse_ts(reply.body["data"]["scheduled_at"]) == parse_ts(data["scheduled_for"])
        assert (await deliver_due(store)).claimed == 0
        assert [r.path for r in sink.requests] == ["/first"]
    runs = await executions(api, data["task_id"])
    assert [(e["id"], e["status"]) for e in runs] == [(data["execution_id"], "success")]


@pytest.mark.parametrize(
    "field", ["url", "name", "method", "timezone", "timeout_ms", "retry_attempts", "enabled"]
)
async def test_null_for_a_required_field_is_a_validation_error(
    api: Api, edit: Any, field: str
) -> None:
    task = await create_cron(api)
    assert_error(await edit(task["id"], {field: None}), 422, "validation_error", {field})
    assert await get_task(api, task["id"]) == task


@pytest.mark.parametrize(
    ("payload", "fields"),
    [
        ({"timeout_ms": 0}, {"timeout_ms"}),
        ({"retry_attempts": 11}, {"retry_attempts"}),
        ({"method": "FETCH"}, {"method"}),
        ({"url": "ftp://x"}, {"url"}),
        ({"headers": {"Host": "evil"}}, {"headers"}),
        ({"headers": {"X-A": "1\r\n"}}, {"headers"}),
        ({"name": "a\x00"}, {"name"}),
        ({"cron": "nope"}, {"cron"}),
        ({"cron": None}, {"cron"}),
        ({"timezone": "Nowhere/City"}, {"timezone"}),
        ({"cron": "* * * * *", "cron_expression": "0 * * * *"}, {"cron"}),
    ],
)
async def test_invalid_edit_of_a_cron_task(
    api: Api, edit: Any, payload: dict[str, Any], fields: set[str]
) -> None:
    task = await create_cron(api)
    assert_error(await edit(task["id"], payload), 422, "validation_error", fields)
    assert await get_task(api, task["id"]) == task


@pytest.mark.parametrize(
    ("payload", "fields"),
    [
        ({"cron": "* * * * *"}, {"cron"}),
        ({"timezone": "Nowhere/City"}, {"timezone"}),
    ],
)
async def test_invalid_edit_of_a_one_time_task(
    api: Api, edit: Any, payload: dict[str, Any], fields: set[str]
) -> None:
    data = await create_once(api, delay="1h")
    before = await get_task(api, data["task_id"])
    assert_error(await edit(data["task_id"], payload), 422, "validation_error", fields)
    assert await get_task(api, data["task_id"]) == before


async def test_edit_with_a_body_that_is_not_a_json_object(api: Api) -> None:
    task = await create_cron(api)
    for raw in (b"nope", b"[]", b""):
        reply = await api.call("PATCH", f"/tasks/{task['id']}", data=raw)
        assert_error(reply, 400, "invalid_json")


async def test_private_target_on_edit_is_refused_when_not_allowed(
    store: Store, clock: ManualClock, api: Api
) -> None:
    task = await create_cron(api)
    strict = Api(make_app(store, clock, allow_private=False), api.key)
    reply = await strict.patch(f"/tasks/{task['id']}", json={"url": "http://127.0.0.1:8080/x"})
    assert_error(reply, 422, "url_not_allowed", {"url"})
    assert await get_task(api, task["id"]) == task


# ----------------------------------------------------------------------------- DELETE /tasks


async def test_delete_cancels_pending_executions(api: Api) -> None:
    data = await create_once(api, delay="1h")
    reply = await api.delete(f"/tasks/{data['task_id']}")
    assert reply.status == 204
    assert reply.text == ""
    assert_error(await api.get(f"/tasks/{data['task_id']}"), 404, "not_found")
    assert_error(await api.get(f"/tasks/{data['task_id']}/executions"), 404, "not_found")
    assert_error(await api.patch(f"/tasks/{data['task_id']}", json={"name": "x"}), 404, "not_found")
    assert_error(await api.post(f"/tasks/{data['task_id']}/trigger"), 404, "not_found")
    assert await list_ids(api) == []
    # History is kept: the execution is still readable, now cancelled.
    kept = await api.get(f"/executions/{data['execution_id']}")
    assert kept.status == 200
    assert kept.body["data"]["status"] == "cancelled"
    parse_ts(kept.body["data"]["finished_at"])


async def test_delete_twice_is_not_found(api: Api) -> None:
    task = await create_cron(api)
    assert (await api.delete(f"/tasks/{task['id']}")).status == 204
    assert_error(await api.delete(f"/tasks/{task['id']}"), 404, "not_found")


async def test_deleted_task_is_not_delivered(api: Api, store: Store) -> None:
    async with serve_sink() as sink:
        data = await create_once(api, url=sink.url + "/x")
        assert (await api.delete(f"/tasks/{data['task_id']}")).status == 204
        assert (await deliver_due(store)).claimed == 0
        assert sink.requests == []


# ---------------------------------------------------------------------- POST /tasks/{id}/trigger


async def test_trigger_queues_an_execution_now(api: Api) -> None:
    task = await create_cron(api, "0 0 1 1 *")
    before = datetime.now(UTC)
    reply = await api.post(f"/tasks/{task['id']}/trigger")
    assert reply.status == 202
    assert set(reply.body) == {"data"}
    data = reply.body["data"]
    assert set(data) == {"execution_id", "status", "scheduled_for"}
    assert data["status"] == "pending"
    assert near(data["scheduled_for"], before)
    runs = await executions(api, task["id"])
    assert [(e["id"], e["status"]) for e in runs] == [(data["execution_id"], "pending")]


async def test_trigger_works_on_a_disabled_task(api: Api, store: Store) -> None:
    async with serve_sink() as sink:
        task = await create_cron(api, "0 0 1 1 *", url=sink.url + "/manual")
        reply = await api.patch(f"/tasks/{task['id']}", json={"enabled": False})
        assert reply.body["data"]["enabled"] is False
        trigger = await api.post(f"/tasks/{task['id']}/trigger")
        assert trigger.status == 202
        assert (await deliver_due(store)).succeeded == 1
        assert [(r.method, r.path) for r in sink.requests] == [("GET", "/manual")]
        execution_id = sink.requests[0].headers["x-runlater-execution-id"]
        assert execution_id == trigger.body["data"]["execution_id"]


# ------------------------------------------------------------------- moving a one-time task


@pytest.mark.parametrize("key", ["run_at", "scheduled_at"])
async def test_patch_run_at_moves_a_pending_one_time_task(
    api: Api, clock: ManualClock, key: str
) -> None:
    data = await create_once(api, delay="1h")
    when = (clock.now() + timedelta(hours=3)).replace(microsecond=0)
    reply = await api.patch(f"/tasks/{data['task_id']}", json={key: when.isoformat()})
    assert reply.status == 200, reply.body
    assert parse_ts(reply.body["data"]["scheduled_at"]) == when
    moved = await api.get(f"/executions/{data['execution_id']}")
    assert parse_ts(moved.body["data"]["scheduled_for"]) == when


async def test_patch_run_at_on_a_cron_task_is_refused(api: Api, clock: ManualClock) -> None:
    created = await api.post("/tasks", json={"url": TARGET, "cron": "0 * * * *"})
    when = (clock.now() + timedelta(hours=3)).isoformat()
    reply = await api.patch(f"/tasks/{created.body['data']['id']}", json={"run_at": when})
    assert reply.status == 422
    assert reply.body["error"]["code"] == "validation_error"
    assert "run_at" in reply.body["error"]["details"]
