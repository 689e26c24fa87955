"""POST /tasks: one-time and cron tasks, and the errors a bad request gets (docs/api.md).

Requests go through quart's test client into the real app, on a real Postgres database (a
fresh clone per test). Deliveries are real HTTP requests to a local sink."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from quart_trio import QuartTrio

from runlater.clock import ManualClock
from runlater.cron import CronSchedule
from runlater.store.postgres import Store
from tests.helpers.api import (
    MAX_REQUEST_BYTES,
    QUEUED_KEYS,
    TARGET,
    TASK_KEYS,
    Api,
    assert_error,
    create,
    create_cron,
    create_once,
    get_task,
    list_ids,
    make_app,
    near,
    parse_ts,
    well_formed_unknown_key,
)
from tests.helpers.factories import make_org

# ------------------------------------------------------------------ POST /tasks: one-time tasks


async def test_immediate_task_is_queued_now(api: Api) -> None:
    before = datetime.now(UTC)
    reply = await api.post("/tasks", json={"url": TARGET})
    assert reply.status == 202
    assert set(reply.body) == {"data", "message"}
    assert reply.body["message"] == "Task queued for execution"
    data = reply.body["data"]
    assert set(data) == QUEUED_KEYS
    assert data["status"] == "pending"
    assert near(data["scheduled_for"], before)
    uuid.UUID(data["task_id"])
    uuid.UUID(data["execution_id"])


async def test_once_task_defaults(api: Api) -> None:
    data = await create_once(api)
    task = await get_task(api, data["task_id"])
    assert set(task) == TASK_KEYS
    assert task["id"] == data["task_id"]
    assert task["schedule_type"] == "once"
    assert task["url"] == TARGET
    assert task["method"] == "POST"
    assert task["headers"] == {}
    assert task["body"] is None
    assert task["cron_expression"] is None
    assert task["timezone"] == "UTC"
    assert task["enabled"] is True
    assert task["timeout_ms"] == 30000
    assert task["retry_attempts"] == 5
    assert task["queue"] is None
    assert parse_ts(task["scheduled_at"]) == parse_ts(data["scheduled_for"])
    assert task["last_execution_at"] is None and task["last_execution_status"] is None
    parse_ts(task["inserted_at"])
    parse_ts(task["updated_at"])


@pytest.mark.parametrize(
    ("delay", "seconds"),
    [("3s", 3), ("5m", 300), ("2h", 7200), ("1d", 86400), (90, 90), ("45", 45), (0, 0)],
)
async def test_delay_sets_scheduled_for(api: Api, delay: Any, seconds: int) -> None:
    before = datetime.now(UTC)
    data = await create_once(api, delay=delay)
    after = datetime.now(UTC)
    scheduled = parse_ts(data["scheduled_for"])
    window = timedelta(seconds=1)
    assert before + timedelta(seconds=seconds) - window <= scheduled
    assert scheduled <= after + timedelta(seconds=seconds) + window
    assert data["status"] == "pending"


@pytest.mark.parametrize("key", ["run_at", "scheduled_at"])
async def test_run_at_with_offset_is_stored_in_utc(api: Api, clock: ManualClock, key: str) -> None:
    when = (clock.now() + timedelta(days=2)).replace(microsecond=0)
    local = when.astimezone(timezone(timedelta(hours=2))).isoformat()
    assert local.endswith("+02:00")
    data = await create_once(api, **{key: local})
    assert data["scheduled_for"].endswith("Z")
    assert parse_ts(data["scheduled_for"]) == when
    task = await get_task(api, data["task_id"])
    assert parse_ts(task["scheduled_at"]) == when


async def test_run_at_a_little_in_the_past_is_accepted(api: Api, clock: ManualClock) -> None:
    when = (clock.now() - timedelta(minutes=4)).replace(microsecond=0)
    data = await create_once(api, run_at=when.isoformat())
    assert parse_ts(data["scheduled_for"]) == when


async def test_run_at_and_scheduled_at_with_the_same_value_are_one_field(
    api: Api, clock: ManualClock
) -> None:
    when = (clock.now() + timedelta(hours=1)).isoformat()
    data = await create_once(api, run_at=when, scheduled_at=when)
    assert near(data["scheduled_for"], datetime.fromisoformat(when), 0.001)


async def test_explicit_method_is_normalized(api: Api) -> None:
    data = await create_once(api, method="put")
    assert (await get_task(api, data["task_id"]))["method"] == "PUT"


async def test_body_object_is_json_encoded(api: Api) -> None:
    payload = {"event": "signup", "ids": [1, 2], "nested": {"é": None}}
    data = await create_once(api, body=payload)
    body = (await get_task(api, data["task_id"]))["body"]
    assert isinstance(body, str)
    assert json.loads(body) == payload


async def test_moderately_nested_body_is_accepted(api: Api) -> None:
    nested: Any = "leaf"
    for _ in range(40):  # 80 levels, plus the request object itself
        nested = {"n": [nested]}
    data = await create_once(api, body=nested)
    assert json.loads((await get_task(api, data["task_id"]))["body"]) == nested


async def test_body_string_is_kept_verbatim(api: Api) -> None:
    data = await create_once(api, body="  not json {  ")
    assert (await get_task(api, data["task_id"]))["body"] == "  not json {  "


async def test_wrapped_request_body(api: Api) -> None:
    wrapped = {"task": {"url": TARGET, "name": "wrapped", "delay": "5m", "headers": {"X-A": "1"}}}
    reply = await api.post("/tasks", json=wrapped)
    assert reply.status == 202
    task = await get_task(api, reply.body["data"]["task_id"])
    assert task["name"] == "wrapped"
    assert task["headers"] == {"X-A": "1"}


async def test_optional_fields_are_stored(api: Api) -> None:
    fields = {
        "name": "nightly report",
        "headers": {"Authorization": "Bearer abc", "X-Trace": "t-1"},
        "timeout_ms": 1000,
        "retry_attempts": 0,
        "callback_url": "http://127.0.0.1:8081/cb",
        "expected_status_codes": "200, 201",
        "expected_body_pattern": "^ok",
        "queue": "emails",
        "notify_on_failure": True,
        "notify_on_recovery": False,
        "on_failure_url": "http://127.0.0.1:8081/fail",
        "on_recovery_url": "http://127.0.0.1:8081/ok",
    }
    data = await create_once(api, delay=60, **fields)
    task = await get_task(api, data["task_id"])
    assert {k: task[k] for k in fields} == {**fields, "expected_status_codes": "200,201"}


# ----------------------------------------------------------------------- POST /tasks: cron tasks


@pytest.mark.parametrize("key", ["cron", "cron_expression"])
async def test_cron_task_is_created_with_next_run(api: Api, clock: ManualClock, key: str) -> None:
    reply = await api.post(
        "/tasks", json={"url": TARGET, key: "0 9 * * 1-5", "timezone": "Europe/Amsterdam"}
    )
    assert reply.status == 201
    assert set(reply.body) == {"data", "message"}
    assert reply.body["message"] == "Cron task created"
    task = reply.body["data"]
    assert set(task) == TASK_KEYS
    assert task["schedule_type"] == "cron"
    assert task["cron_expression"] == "0 9 * * 1-5"
    assert task["timezone"] == "Europe/Amsterdam"
    assert task["method"] == "GET"
    assert task["scheduled_at"] is None
    assert task["enabled"] is True
    expected = CronSchedule("0 9 * * 1-5", "Europe/Amsterdam").next_after(clock.now())
    assert parse_ts(task["next_run_at"]) == expected
    assert await get_task(api, task["id"]) == task


async def test_cron_timezone_defaults_to_utc(api: Api, clock: ManualClock) -> None:
    task = await create_cron(api, "30 2 * * *")
    assert task["timezone"] == "UTC"
    assert parse_ts(task["next_run_at"]) == CronSchedule("30 2 * * *").next_after(clock.now())


async def test_cron_task_accepts_method_and_object_body(api: Api) -> None:
    task = await create_cron(api, method="POST", body={"ping": True})
    assert task["method"] == "POST"
    assert json.loads(task["body"]) == {"ping": True}


async def test_cron_and_cron_expression_with_the_same_value(api: Api) -> None:
    task = await create(api, 201, cron="*/10 * * * *", cron_expression="*/10 * * * *")
    assert task["cron_expression"] == "*/10 * * * *"


# ---------------------------------------------------------------------------- errors: auth


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "Bearer not-a-key",
        "Bearer pk_live_short.sk_live_short",
        "unknown",
        "wrong-secret",
    ],
)
@pytest.mark.parametrize(("method", "path"), [("GET", "/tasks"), ("POST", "/tasks")])
async def test_bad_credentials_are_unauthorized(
    api: Api, app: QuartTrio, authorization: str | None, method: str, path: str
) -> None:
    if authorization == "unknown":
        authorization = "Bearer " + well_formed_unknown_key()
    elif authorization == "wrong-secret":
        assert api.key is not None
        key_id = api.key.split(".")[0]
        authorization = f"Bearer {key_id}.sk_live_{'A' * 32}"
    headers = {} if authorization is None else {"Authorization": authorization}
    reply = await Api(app, None).call(method, path, json={"url": TARGET}, headers=headers)
    assert_error(reply, 401, "unauthorized")
    assert reply.headers["WWW-Authenticate"] == "Bearer"


async def test_unauthorized_request_creates_nothing(api: Api, app: QuartTrio) -> None:
    reply = await Api(app, well_formed_unknown_key()).post("/tasks", json={"url": TARGET})
    assert_error(reply, 401, "unauthorized")
    assert await list_ids(api) == []


# ----------------------------------------------------------------------- errors: 400 input


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"   ",
        b"not json",
        b"{bad",
        b'{"url": "http://127.0.0.1:8080/x",}',
        b"\xff\xfe{}",
        b"[1, 2]",
        b'"a string"',
        b"42",
        b"null",
        b"true",
        b"[" * 100_000 + b"]" * 100_000,
        b'{"url": "http://127.0.0.1:8080/x", "body": ' + b"[" * 5000 + b"]" * 5000 + b"}",
        b'{"url": "http://127.0.0.1:8080/x", "body": ' + b"[" * 900 + b"]" * 900 + b"}",
        b'{"url": "http://127.0.0.1:8080/x", "body": ' + b'{"a":' * 150 + b"1" + b"}" * 151,
    ],
    ids=[
        "empty",
        "blank",
        "text",
        "truncated",
        "trailing-comma",
        "not-utf8",
        "array",
        "string",
        "number",
        "null",
        "bool",
        "deep-array",
        "deep-body",
        "900-levels",
        "150-levels",
    ],
)
async def test_body_that_is_not_a_json_object_is_invalid_json(api: Api, raw: bytes) -> None:
    assert_error(await api.post("/tasks", data=raw), 400, "invalid_json")


async def test_wrapped_body_that_is_not_an_object(api: Api) -> None:
    reply = await api.post("/tasks", json={"task": "nope"})
    assert_error(reply, 422, "validation_error", {"task"})


@pytest.mark.parametrize(
    "delay",
    ["3x", "-5s", "5 minutes", "1.5h", "", "s", -1, 1.5, True, [5], {"s": 5}, 366 * 86400 + 1],
)
async def test_bad_delay(api: Api, delay: Any) -> None:
    assert_error(
        await api.post("/tasks", json={"url": TARGET, "delay": delay}), 400, "invalid_delay"
    )


@pytest.mark.parametrize(
    "run_at",
    [
        "2030-01-01T10:00:00",
        "2030-01-01",
        "garbage",
        "2030-13-01T00:00:00Z",
        "",
        1767225600,
        "9999-12-31T23:59:59-14:00",
        "past",
    ],
)
@pytest.mark.parametrize("key", ["run_at", "scheduled_at"])
async def test_bad_run_at(api: Api, clock: ManualClock, run_at: Any, key: str) -> None:
    if run_at == "past":
        run_at = (clock.now() - timedelta(minutes=6)).isoformat()
    reply = await api.post("/tasks", json={"url": TARGET, key: run_at})
    assert_error(reply, 400, "invalid_run_at")


# ------------------------------------------------------------------ errors: 422 validation


FORBIDDEN_HEADERS = ["Host", "Content-Length", "Transfer-Encoding", "Connection", "connection"]

INVALID_CREATE = [
    ("two-timing-keys", {"delay": "5s", "cron": "* * * * *"}, {"delay", "cron"}),
    ("delay-and-run_at", {"delay": 5, "run_at": "2030-01-01T00:00:00Z"}, {"delay", "run_at"}),
    ("cron-alias-conflict", {"cron": "* * * * *", "cron_expression": "0 * * * *"}, {"cron"}),
    (
        "run_at-alias-conflict",
        {"run_at": "2030-01-01T00:00:00Z", "scheduled_at": "2030-01-02T00:00:00Z"},
        {"run_at"},
    ),
    ("missing-url", {"url": None}, {"url"}),
    ("url-not-string", {"url": 5}, {"url"}),
    ("url-not-http", {"url": "ftp://127.0.0.1:8080/x"}, {"url"}),
    ("url-no-scheme", {"url": "127.0.0.1:8080/x"}, {"url"}),
    ("url-too-long", {"url": TARGET + "?q=" + "a" * 2048}, {"url"}),
    ("url-with-space", {"url": "http://127.0.0.1:8080/a b"}, {"url"}),
    ("method-unknown", {"method": "FETCH"}, {"method"}),
    ("method-not-string", {"method": 1}, {"method"}),
    ("timeout-too-small", {"timeout_ms": 999}, {"timeout_ms"}),
    ("timeout-too-large", {"timeout_ms": 300_001}, {"timeout_ms"}),
    ("timeout-string", {"timeout_ms": "1000"}, {"timeout_ms"}),
    ("timeout-float", {"timeout_ms": 1000.5}, {"timeout_ms"}),
    ("retries-negative", {"retry_attempts": -1}, {"retry_attempts"}),
    ("retries-too-many", {"retry_attempts": 11}, {"retry_attempts"}),
    ("nul-in-name", {"name": "a\x00b"}, {"name"}),
    ("nul-in-url", {"url": TARGET + "\x00"}, {"url"}),
    ("nul-in-body", {"body": "x\x00y"}, {"body"}),
    ("nul-in-body-object", {"body": {"k": ["v\x00"]}}, {"body"}),
    ("nul-in-header-value", {"headers": {"X-A": "a\x00"}}, {"headers"}),
    ("bad-cron", {"cron": "61 * * * *"}, {"cron"}),
    ("cron-too-few-fields", {"cron": "* * *"}, {"cron"}),
    ("cron-empty", {"cron": ""}, {"cron"}),
    ("cron-not-string", {"cron": 5}, {"cron"}),
    ("cron-unknown-timezone", {"cron": "* * * * *", "timezone": "Mars/Olympus"}, {"timezone"}),
    ("once-unknown-timezone", {"delay": 5, "timezone": "Mars/Olympus"}, {"timezone"}),
    ("header-value-crlf", {"headers": {"X-A": "a\r\nX-Injected: 1"}}, {"headers"}),
    ("header-value-lf", {"headers": {"X-A": "a\nb"}}, {"headers"}),
    ("header-name-crlf", {"headers": {"X-A\r\nX-B": "1"}}, {"headers"}),
    ("header-name-space", {"headers": {"X A": "1"}}, {"headers"}),
    ("header-name-trailing-lf", {"headers": {"X-A\n": "1"}}, {"headers"}),
    ("header-name-empty", {"headers": {"": "1"}}, {"headers"}),
    ("header-value-not-string", {"headers": {"X-A": 1}}, {"headers"}),
    ("header-value-non-ascii", {"headers": {"X-A": "café"}}, {"headers"}),
    ("header-value-control", {"headers": {"X-A": "a\x01b"}}, {"headers"}),
    ("headers-not-object", {"headers": ["X-A: 1"]}, {"headers"}),
    *[(f"forbidden-{h}", {"headers": {h: "x"}}, {"headers"}) for h in FORBIDDEN_HEADERS],
    ("name-empty", {"name": ""}, {"name"}),
    ("name-too-long", {"name": "n" * 201}, {"name"}),
    ("enabled-not-bool", {"enabled": "yes"}, {"enabled"}),
    ("queue-empty", {"queue": ""}, {"queue"}),
    ("status-codes", {"expected_status_codes": "ok"}, {"expected_status_codes"}),
    ("body-pattern", {"expected_body_pattern": "("}, {"expected_body_pattern"}),
    # Compiled, this 9-character pattern is 8.8 MiB; nested counts multiply.
    ("body-pattern-expands", {"expected_body_pattern": r"\w{65535}"}, {"expected_body_pattern"}),
    (
        "body-pattern-nested",
        {"expected_body_pattern": "((a{30}){30}){30}"},
        {"expected_body_pattern"},
    ),
    (
        "status-codes-too-long",
        {"expected_status_codes": "200," * 60 + "201"},
        {"expected_status_codes"},
    ),
    ("cron-too-long", {"cron": "0,1,2,3,4,5,6,7,8,9," * 10 + "10 * * * *"}, {"cron"}),
    ("callback-not-url", {"callback_url": "nope"}, {"callback_url"}),
    ("several-fields", {"method": "X", "timeout_ms": 1}, {"method", "timeout_ms"}),
]


@pytest.mark.parametrize(
    ("payload", "fields"), [c[1:] for c in INVALID_CREATE], ids=[c[0] for c in INVALID_CREATE]
)
async def test_invalid_task_is_a_validation_error(
    api: Api, payload: dict[str, Any], fields: set[str]
) -> None:
    reply = await api.post("/tasks", json={"url": TARGET, **payload})
    assert_error(reply, 422, "validation_error", fields)
    assert await list_ids(api) == []


async def test_missing_url_in_an_empty_object(api: Api) -> None:
    assert_error(await api.post("/tasks", json={}), 422, "validation_error", {"url"})


@pytest.mark.parametrize(
    ("field", "url"),
    [
        ("url", "http://127.0.0.1:8080/x"),
        ("url", "http://localhost:8080/x"),
        ("url", "http://[::1]:8080/x"),
        ("url", "http://2130706433:8080/x"),
        ("url", "http://10.0.0.1:8080/x"),
        ("callback_url", "http://127.0.0.1:8080/cb"),
        ("on_failure_url", "http://192.168.1.1:8080/f"),
    ],
)
async def test_private_target_is_refused_when_not_allowed(
    store: Store, clock: ManualClock, field: str, url: str
) -> None:
    _, key = await make_org(store, "Strict")
    strict = Api(make_app(store, clock, allow_private=False), key)
    payload = {"url": "http://8.8.8.8/x", field: url}
    assert_error(await strict.post("/tasks", json=payload), 422, "url_not_allowed", {field})
    assert await list_ids(strict) == []


async def test_metadata_address_is_refused_even_when_private_targets_are_allowed(api: Api) -> None:
    reply = await api.post("/tasks", json={"url": "http://169.254.169.254/latest/meta-data"})
    assert_error(reply, 422, "url_not_allowed", {"url"})


# --------------------------------------------------------------------------- errors: 413


def _request_of_size(size: int) -> bytes:
    """A valid task request of exactly ``size`` bytes."""
    prefix, suffix = b'{"url": "' + TARGET.encode() + b'", "body": "', b'"}'
    return prefix + b"x" * (size - len(prefix) - len(suffix)) + suffix


async def test_request_of_exactly_256_kib_is_accepted(api: Api) -> None:
    raw = _request_of_size(MAX_REQUEST_BYTES)
    assert len(raw) == MAX_REQUEST_BYTES
    reply = await api.post("/tasks", data=raw)
    assert reply.status == 202, reply.body


async def test_request_over_256_kib_is_payload_too_large(api: Api) -> None:
    reply = await api.post("/tasks", data=_request_of_size(MAX_REQUEST_BYTES + 1))
    assert_error(reply, 413, "payload_too_large")
    assert await list_ids(api) == []


async def test_patch_over_256_kib_is_payload_too_large(api: Api) -> None:
    task = await create_cron(api)
    reply = await api.patch(f"/tasks/{task['id']}", json={"body": "x" * MAX_REQUEST_BYTES})
    assert_error(reply, 413, "payload_too_large")
    assert (await get_task(api, task["id"]))["body"] is None
