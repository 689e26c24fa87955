"""The API as a test drives it: quart's test client on the real app, one API key per ``Api``,
and the contract's shapes (docs/api.md) to check answers against."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from quart_trio import QuartTrio

from runlater import apikeys
from runlater.actors.worker import Worker, WorkerResult
from runlater.clock import ManualClock
from runlater.config import Settings
from runlater.delivery.client import Deliverer
from runlater.delivery.transport import TrioTransport
from runlater.store.postgres import Store
from runlater.web.app import create_app

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
        "alert_after",
        "badge_token",
        "origin",
        "failure_callback_url",
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

    async def exchange(self, method: str, path: str, json: Any = None) -> tuple[int, Any]:
        """The status and the parsed body, for tests that unpack the two."""
        reply = await self.call(method, path, json=json)
        return reply.status, reply.body

    async def get(self, path: str, **kw: Any) -> Reply:
        return await self.call("GET", path, **kw)

    async def post(self, path: str, **kw: Any) -> Reply:
        return await self.call("POST", path, **kw)

    async def patch(self, path: str, **kw: Any) -> Reply:
        return await self.call("PATCH", path, **kw)

    async def put(self, path: str, **kw: Any) -> Reply:
        return await self.call("PUT", path, **kw)

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


def well_formed_unknown_key() -> str:
    """An API key of the right shape that no organization has."""
    return apikeys.generate().full
