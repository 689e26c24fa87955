"""Reading tasks and executions: lists, filters, pagination, org isolation (docs/api.md).

Requests go through quart's test client into the real app, on a real Postgres database (a
fresh clone per test). Deliveries are real HTTP requests to a local sink."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from runlater.store.postgres import Store
from tests.helpers.api import (
    EXECUTION_KEYS,
    TARGET,
    Api,
    assert_error,
    create_cron,
    create_once,
    deliver_due,
    executions,
    get_task,
    list_ids,
    parse_ts,
)
from tests.helpers.sink import serve_sink

# ------------------------------------------------------------- errors: 404 and org isolation


ID_ROUTES = [
    ("GET", "/tasks/{task}", None),
    ("PATCH", "/tasks/{task}", {"name": "stolen"}),
    ("PUT", "/tasks/{task}", {"name": "stolen"}),
    ("DELETE", "/tasks/{task}", None),
    ("POST", "/tasks/{task}/trigger", None),
    ("GET", "/tasks/{task}/executions", None),
    ("GET", "/executions/{execution}", None),
]


async def _other_orgs_ids(other: Api) -> dict[str, str]:
    data = await create_once(other, name="theirs", delay="1h")
    return {"task": data["task_id"], "execution": data["execution_id"]}


@pytest.mark.parametrize(
    ("method", "template", "payload"), ID_ROUTES, ids=[f"{m} {p}" for m, p, _ in ID_ROUTES]
)
@pytest.mark.parametrize(
    "kind", ["unknown", "malformed", "not-hex", "integer", "another-org", "another-org-urn"]
)
async def test_route_with_an_id_answers_not_found(
    api: Api, other: Api, method: str, template: str, payload: Any, kind: str
) -> None:
    theirs = await _other_orgs_ids(other)
    ids = {
        "unknown": {k: str(uuid.uuid4()) for k in theirs},
        "malformed": {k: "not-a-uuid" for k in theirs},
        "not-hex": {k: "zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz" for k in theirs},
        "integer": {k: "1" for k in theirs},
        "another-org": theirs,
        "another-org-urn": {k: f"urn:uuid:{v}" for k, v in theirs.items()},
    }[kind]
    reply = await api.call(method, template.format(**ids), json=payload)
    assert_error(reply, 404, "not_found")


async def test_another_orgs_task_is_untouched_by_every_route(api: Api, other: Api) -> None:
    theirs = await _other_orgs_ids(other)
    before = await get_task(other, theirs["task"])
    for method, template, payload in ID_ROUTES:
        reply = await api.call(method, template.format(**theirs), json=payload)
        assert_error(reply, 404, "not_found")
    assert await get_task(other, theirs["task"]) == before
    runs = await executions(other, theirs["task"])
    assert [(e["id"], e["status"]) for e in runs] == [(theirs["execution"], "pending")]


async def test_another_orgs_tasks_never_appear_in_lists(api: Api, other: Api) -> None:
    mine = [(await create_once(api, queue="q"))["task_id"], (await create_cron(api))["id"]]
    await create_once(other, queue="q")
    await create_cron(other)
    await create_once(other)
    for query in ["", "?type=once", "?type=cron", "?queue=q", "?queue=none", "?limit=100"]:
        assert set(await list_ids(api, query)) <= set(mine), query
    assert sorted(await list_ids(api)) == sorted(mine)
    assert len(await list_ids(other)) == 3


async def test_unknown_route_is_not_found_in_the_error_shape(api: Api) -> None:
    assert_error(await api.get("/nope"), 404, "not_found")


# -------------------------------------------------------------------------------- GET /tasks


async def test_list_shape_and_defaults(api: Api) -> None:
    task = await create_cron(api)
    reply = await api.get("/tasks")
    assert reply.status == 200
    assert reply.body == {"data": [task], "has_more": False, "limit": 50, "offset": 0}


async def test_empty_list(api: Api) -> None:
    reply = await api.get("/tasks")
    assert reply.body == {"data": [], "has_more": False, "limit": 50, "offset": 0}


async def test_list_pagination(api: Api) -> None:
    created = [(await create_once(api, delay="1h"))["task_id"] for _ in range(5)]
    pages = []
    for offset, count, more in [(0, 2, True), (2, 2, True), (4, 1, False), (6, 0, False)]:
        reply = await api.get(f"/tasks?limit=2&offset={offset}")
        assert reply.status == 200
        assert (reply.body["limit"], reply.body["offset"]) == (2, offset)
        assert len(reply.body["data"]) == count
        assert reply.body["has_more"] is more
        pages += [t["id"] for t in reply.body["data"]]
    assert pages == list(reversed(created))  # newest activity first


async def test_list_orders_by_newest_activity(api: Api) -> None:
    first = await create_cron(api, name="first")
    second = await create_cron(api, name="second")
    assert await list_ids(api) == [second["id"], first["id"]]
    assert (await api.patch(f"/tasks/{first['id']}", json={"name": "touched"})).status == 200
    assert await list_ids(api) == [first["id"], second["id"]]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=-1", "limit"),
        ("limit=ten", "limit"),
        ("offset=-1", "offset"),
        ("offset=x", "offset"),
        ("type=daily", "type"),
        ("status=done", "status"),
    ],
)
async def test_list_with_bad_query_is_a_validation_error(api: Api, query: str, field: str) -> None:
    assert_error(await api.get(f"/tasks?{query}"), 422, "validation_error", {field})


async def test_list_limit_bounds_are_inclusive(api: Api) -> None:
    for limit in (1, 100):
        reply = await api.get(f"/tasks?limit={limit}")
        assert reply.status == 200 and reply.body["limit"] == limit


async def test_list_filter_by_type(api: Api) -> None:
    once = (await create_once(api))["task_id"]
    cron = (await create_cron(api))["id"]
    assert await list_ids(api, "?type=once") == [once]
    assert await list_ids(api, "?type=cron") == [cron]


async def test_list_filter_by_queue(api: Api) -> None:
    emails = (await create_once(api, queue="emails"))["task_id"]
    sms = (await create_once(api, queue="sms"))["task_id"]
    plain = (await create_cron(api))["id"]
    assert await list_ids(api, "?queue=emails") == [emails]
    assert await list_ids(api, "?queue=sms") == [sms]
    assert await list_ids(api, "?queue=none") == [plain]
    assert await list_ids(api, "?queue=other") == []


async def test_list_filter_by_last_execution_status(api: Api, store: Store) -> None:
    async with serve_sink() as sink:
        ok = (await create_once(api, url=sink.url + "/ok", retry_attempts=0))["task_id"]
        bad = (await create_once(api, url=sink.url + "/status/404", retry_attempts=0))["task_id"]
        idle = (await create_once(api, url=sink.url + "/later", delay="1h"))["task_id"]
        result = await deliver_due(store)
    assert (result.succeeded, result.failed) == (1, 1)
    assert await list_ids(api, "?status=success") == [ok]
    assert await list_ids(api, "?status=failed") == [bad]
    assert await list_ids(api, "?status=pending") == []
    assert idle in await list_ids(api)
    task = await get_task(api, ok)
    assert task["last_execution_status"] == "success"
    parse_ts(task["last_execution_at"])


# ------------------------------------------------------------------------ executions


async def test_executions_are_listed_newest_first(api: Api) -> None:
    data = await create_once(api, delay="1h")
    triggered = []
    for _ in range(2):
        reply = await api.post(f"/tasks/{data['task_id']}/trigger")
        triggered.append(reply.body["data"]["execution_id"])
    # The one-time run is an hour away; the manual triggers are due now.
    runs = await executions(api, data["task_id"])
    assert [e["id"] for e in runs] == [data["execution_id"], triggered[1], triggered[0]]
    for run in runs:
        assert set(run) == EXECUTION_KEYS
        assert (run["task_id"], run["status"], run["attempt"]) == (data["task_id"], "pending", 1)
        parse_ts(run["scheduled_for"])
        assert run["started_at"] is None and run["finished_at"] is None


async def test_execution_list_pagination_and_shape(api: Api) -> None:
    task = await create_cron(api)
    for _ in range(3):
        await api.post(f"/tasks/{task['id']}/trigger")
    reply = await api.get(f"/tasks/{task['id']}/executions?limit=2")
    assert reply.status == 200
    assert set(reply.body) == {"data", "has_more", "limit", "offset"}
    assert (len(reply.body["data"]), reply.body["has_more"]) == (2, True)
    reply = await api.get(f"/tasks/{task['id']}/executions?limit=2&offset=2")
    assert (len(reply.body["data"]), reply.body["has_more"]) == (1, False)


async def test_execution_list_filter_by_status(api: Api, store: Store) -> None:
    async with serve_sink() as sink:
        data = await create_once(api, url=sink.url + "/x", delay="1h")
        now = (await api.post(f"/tasks/{data['task_id']}/trigger")).body["data"]["execution_id"]
        assert (await deliver_due(store)).succeeded == 1
    assert [e["id"] for e in await executions(api, data["task_id"], "?status=success")] == [now]
    pending = await executions(api, data["task_id"], "?status=pending")
    assert [e["id"] for e in pending] == [data["execution_id"]]
    assert await executions(api, data["task_id"], "?status=failed") == []


@pytest.mark.parametrize("query", ["status=nope", "limit=0", "limit=101", "offset=-3"])
async def test_execution_list_with_bad_query(api: Api, query: str) -> None:
    task = await create_cron(api)
    reply = await api.get(f"/tasks/{task['id']}/executions?{query}")
    assert_error(reply, 422, "validation_error", {query.split("=")[0]})


async def test_execution_detail_after_delivery(api: Api, store: Store) -> None:
    async with serve_sink() as sink:
        data = await create_once(
            api,
            url=sink.url + "/hook?x=1",
            method="PUT",
            headers={"X-Custom": "yes"},
            body={"a": 1},
            retry_attempts=0,
        )
        assert (await deliver_due(store)).succeeded == 1
        received = sink.requests[0]
    reply = await api.get(f"/executions/{data['execution_id']}")
    assert reply.status == 200
    assert set(reply.body) == {"data"}
    detail = reply.body["data"]
    assert set(detail) == EXECUTION_KEYS | {"request", "response"}
    assert detail["id"] == data["execution_id"]
    assert detail["task_id"] == data["task_id"]
    assert (detail["status"], detail["attempt"], detail["status_code"]) == ("success", 1, 200)
    assert detail["error_message"] is None
    assert isinstance(detail["duration_ms"], int) and detail["duration_ms"] >= 0
    assert parse_ts(detail["started_at"]) <= parse_ts(detail["finished_at"])
    assert parse_ts(detail["scheduled_for"]) == parse_ts(data["scheduled_for"])

    request = detail["request"]
    assert set(request) == {"method", "url", "headers", "body"}
    assert (request["method"], request["url"]) == ("PUT", sink.url + "/hook?x=1")
    assert json.loads(request["body"]) == {"a": 1}
    assert received.body == request["body"].encode()
    assert request["headers"]["X-Custom"] == "yes"
    assert request["headers"]["X-Runlater-Execution-Id"] == data["execution_id"]
    # What the detail says was sent is what the target received.
    for name, value in request["headers"].items():
        assert received.headers[name.lower()] == value, name

    response = detail["response"]
    assert set(response) == {"status", "headers", "body"}
    assert (response["status"], response["body"]) == (200, "ok")
    assert response["headers"]["content-length"] == "2"


async def test_execution_detail_of_a_failed_delivery(api: Api, store: Store) -> None:
    async with serve_sink() as sink:
        data = await create_once(api, url=sink.url + "/status/404", retry_attempts=0)
        assert (await deliver_due(store)).failed == 1
    detail = (await api.get(f"/executions/{data['execution_id']}")).body["data"]
    assert (detail["status"], detail["status_code"]) == ("failed", 404)
    assert detail["error_message"]
    assert detail["response"]["status"] == 404
    assert detail["response"]["body"] == "status 404"


async def test_execution_detail_before_delivery(api: Api) -> None:
    data = await create_once(api, body="payload", delay="1h")
    detail = (await api.get(f"/executions/{data['execution_id']}")).body["data"]
    assert detail["status"] == "pending"
    assert detail["request"]["method"] == "POST"
    assert detail["request"]["url"] == TARGET
    assert detail["request"]["body"] == "payload"
    assert detail["response"] is None
