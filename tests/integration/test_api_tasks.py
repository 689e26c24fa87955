"""Contract tests of ``/api/v1/tasks``, ``/api/v1/executions`` and ``/health`` (docs/api.md).

Requests go through quart's test client into the real app, on a real Postgres database (a fresh
clone per test). Deliveries are real HTTP requests to a local sink. Status codes and bodies are
checked against the contract, not against the implementation's own serializers.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from quart_trio import QuartTrio

from runlater import apikeys
from runlater.actors.worker import Worker, WorkerResult
from runlater.clock import ManualClock
from runlater.config import Settings
from runlater.cron import CronSchedule
from runlater.delivery.client import Deliverer
from runlater.delivery.transport import TrioTransport
from runlater.store.postgres import Store
from runlater.web.app import create_app
from tests.helpers.factories import make_org
from tests.helpers.sink import serve_sink

# A loopback target: admitted by the SSRF guard with allow_private_targets=True. Tasks that only
# need to exist (never delivered) point here.
TARGET = "http://127.0.0.1:8080/hook"
UNREACHABLE_DSN = "postgresql://runlater:x@127.0.0.1:1/nope"
MAX_REQUEST_BYTES = 256 * 1024

TASK_KEYS = frozenset(
    {
        "id",
        "name",
        "url",
        "method",
        "headers",
        "body",
        "schedule_type",
        "cron_expression",
        "timezone",
        "scheduled_at",
        "next_run_at",
        "enabled",
        "timeout_ms",
        "retry_attempts",
        "callback_url",
        "expected_status_codes",
        "expected_body_pattern",
        "queue",
        "notify_on_failure",
        "notify_on_recovery",
        "on_failure_url",
        "on_recovery_url",
        "last_execution_at",
        "last_execution_status",
        "inserted_at",
        "updated_at",
    }
)
EXECUTION_KEYS = frozenset(
    {
        "id",
        "task_id",
        "status",
        "attempt",
        "scheduled_for",
        "started_at",
        "finished_at",
        "status_code",
        "duration_ms",
        "error_message",
    }
)
QUEUED_KEYS = frozenset({"task_id", "execution_id", "status", "scheduled_for"})
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$")


# ------------------------------------------------------------------------------------ helpers


def parse_ts(value: Any) -> datetime:
    """An API timestamp: ISO-8601 UTC with ``Z``."""
    assert isinstance(value, str) and TIMESTAMP.match(value), f"not an ISO UTC 'Z' time: {value!r}"
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def near(value: Any, expected: datetime, tolerance_s: float = 3.0) -> bool:
    return abs((parse_ts(value) - expected).total_seconds()) <= tolerance_s


@dataclass
class Reply:
    status: int
    body: Any  # parsed JSON, or None for an empty body
    text: str
    headers: Any


@dataclass
class Api:
    """One API key's view of the app: ``await api.post("/tasks", json={...})``."""

    app: QuartTrio
    key: str | None

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        data: bytes | str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        sent = {"Authorization": f"Bearer {self.key}"} if self.key else {}
        sent.update(headers or {})
        kwargs: dict[str, Any] = {"method": method, "headers": sent}
        if data is not None:
            kwargs["data"] = data
            sent.setdefault("Content-Type", "application/json")
        elif json is not None:
            kwargs["json"] = json
        url = path if path.startswith("/health") else "/api/v1" + path
        response = await self.app.test_client().open(url, **kwargs)
        text = await response.get_data(as_text=True)
        return Reply(response.status_code, _decode(text), text, response.headers)

    async def get(self, path: str, **kw: Any) -> Reply:
        return await self.call("GET", path, **kw)

    async def post(self, path: str, **kw: Any) -> Reply:
        return await self.call("POST", path, **kw)

    async def patch(self, path: str, **kw: Any) -> Reply:
        return await self.call("PATCH", path, **kw)

    async def delete(self, path: str, **kw: Any) -> Reply:
        return await self.call("DELETE", path, **kw)


def _decode(text: str) -> Any:
    return json.loads(text) if text else None


def assert_error(
    reply: Reply, status: int, code: str, fields: set[str] | None = None
) -> dict[str, Any]:
    """The one error shape: ``{"error": {"code", "message", "details"?}}``, JSON, no trace."""
    assert reply.status == status, (reply.status, reply.body)
    assert reply.headers["Content-Type"] == "application/json"
    assert "Traceback" not in reply.text and 'File "' not in reply.text
    assert set(reply.body) == {"error"}, reply.body
    error = reply.body["error"]
    assert set(error) <= {"code", "message", "details"}, error
    assert error["code"] == code, error
    assert isinstance(error["message"], str) and error["message"], error
    if fields is not None:
        assert set(error["details"]) == fields, error
        for messages in error["details"].values():
            assert messages and all(isinstance(m, str) and m for m in messages), error
    return error


async def create(api: Api, expected_status: int, **payload: Any) -> dict[str, Any]:
    """POST /tasks that must succeed; returns ``data``."""
    payload.setdefault("url", TARGET)
    reply = await api.post("/tasks", json=payload)
    assert reply.status == expected_status, reply.body
    return reply.body["data"]


async def create_once(api: Api, **payload: Any) -> dict[str, Any]:
    return await create(api, 202, **payload)


async def create_cron(api: Api, expression: str = "*/5 * * * *", **payload: Any) -> dict[str, Any]:
    return await create(api, 201, cron=expression, **payload)


async def get_task(api: Api, task_id: str) -> dict[str, Any]:
    reply = await api.get(f"/tasks/{task_id}")
    assert reply.status == 200, reply.body
    return reply.body["data"]


async def list_ids(api: Api, query: str = "") -> list[str]:
    reply = await api.get("/tasks" + query)
    assert reply.status == 200, reply.body
    return [t["id"] for t in reply.body["data"]]


async def executions(api: Api, task_id: str, query: str = "") -> list[dict[str, Any]]:
    reply = await api.get(f"/tasks/{task_id}/executions{query}")
    assert reply.status == 200, reply.body
    return reply.body["data"]


async def deliver_due(store: Store) -> WorkerResult:
    """Deliver every due execution once, for real, as a worker node would."""
    async with TrioTransport(allow_private=True) as http:
        deliverer = Deliverer(http)
        worker = Worker(store, deliverer, node="t", lease_margin_s=5)
        return await worker.run_once(10)


def make_app(store: Store, clock: ManualClock, *, allow_private: bool = True) -> QuartTrio:
    return create_app(store, Settings(allow_private_targets=allow_private), clock)


# ----------------------------------------------------------------------------------- fixtures


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime.now(UTC))


@pytest.fixture
def app(store: Store, clock: ManualClock) -> QuartTrio:
    return make_app(store, clock)


@pytest.fixture
async def api(store: Store, app: QuartTrio) -> Api:
    _, key = await make_org(store, "Acme")
    return Api(app, key)


@pytest.fixture
async def other(store: Store, app: QuartTrio) -> Api:
    """A second organization on the same app."""
    _, key = await make_org(store, "Globex")
    return Api(app, key)


@pytest.fixture
async def dead_app(aio_loop: object, clock: ManualClock) -> AsyncIterator[QuartTrio]:
    """An app whose database cannot be reached (nothing listens on port 1)."""
    store = await Store.open(UNREACHABLE_DSN)
    try:
        yield make_app(store, clock)
    finally:
        await store.close()


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


def _well_formed_unknown_key() -> str:
    return apikeys.generate().full


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
        authorization = "Bearer " + _well_formed_unknown_key()
    elif authorization == "wrong-secret":
        key_id = api.key.split(".")[0]
        authorization = f"Bearer {key_id}.sk_live_{'A' * 32}"
    headers = {} if authorization is None else {"Authorization": authorization}
    reply = await Api(app, None).call(method, path, json={"url": TARGET}, headers=headers)
    assert_error(reply, 401, "unauthorized")
    assert reply.headers["WWW-Authenticate"] == "Bearer"


async def test_unauthorized_request_creates_nothing(api: Api, app: QuartTrio) -> None:
    reply = await Api(app, _well_formed_unknown_key()).post("/tasks", json={"url": TARGET})
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


# ----------------------------------------------------------------------------------- /health


async def test_health_is_liveness_and_reports_the_last_readiness_answer(app: QuartTrio) -> None:
    api = Api(app, None)
    assert (await api.get("/health")).body == {"status": "ok", "database": "unknown"}
    ready = await api.get("/health/ready")
    assert ready.status == 200
    assert ready.body == {"status": "ok", "database": "connected"}
    reply = await api.get("/health")
    assert reply.status == 200
    assert reply.body == {"status": "ok", "database": "connected"}


async def test_health_when_the_database_is_unreachable(dead_app: QuartTrio) -> None:
    """Liveness stays 200 (the process is fine: restarting it would not bring the database
    back); readiness answers 503, and liveness then reports what readiness found."""
    api = Api(dead_app, None)
    ready = await api.get("/health/ready")
    assert ready.status == 503
    assert ready.body == {"status": "error", "database": "unreachable"}
    assert ready.headers["Retry-After"] == "5"
    reply = await api.get("/health")
    assert reply.status == 200
    assert reply.body == {"status": "ok", "database": "unreachable"}


@pytest.mark.parametrize(
    ("method", "path", "payload"),
    [
        ("GET", "/tasks", None),
        ("POST", "/tasks", {"url": TARGET}),
        ("GET", f"/tasks/{uuid.uuid4()}", None),
    ],
)
async def test_api_answers_unavailable_when_the_database_is_unreachable(
    dead_app: QuartTrio, method: str, path: str, payload: Any
) -> None:
    # Authentication itself needs the database: it must be 503, never 500 or 401.
    reply = await Api(dead_app, _well_formed_unknown_key()).call(method, path, json=payload)
    assert_error(reply, 503, "unavailable")
    assert int(reply.headers["Retry-After"]) > 0


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
