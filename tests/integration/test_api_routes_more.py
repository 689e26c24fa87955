"""``GET /cron/preview``, ``POST /executions/{id}/retry`` and ``DELETE /tasks?queue=``."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest
from quart_trio import QuartTrio

from runlater.clock import SystemClock
from runlater.config import Settings
from runlater.store.postgres import Store
from runlater.web.app import create_app
from tests.helpers.factories import make_org, once_task
from tests.helpers.sink import serve_sink
from tests.integration.test_delivery_path import deliver_due


class Client:
    def __init__(self, app: QuartTrio, key: str) -> None:
        self.app, self.key = app, key

    async def call(self, method: str, path: str, **kw: Any) -> tuple[int, Any]:
        response = await self.app.test_client().open(
            "/api/v1" + path, method=method, headers={"Authorization": f"Bearer {self.key}"}, **kw
        )
        text = await response.get_data(as_text=True)
        return response.status_code, (await response.get_json()) if text else None


@pytest.fixture
async def clients(store: Store) -> tuple[Client, Client, UUID]:
    app = create_app(store, Settings(allow_private_targets=True), SystemClock())
    org, key = await make_org(store, "Acme")
    _, other_key = await make_org(store, "Globex")
    return Client(app, key), Client(app, other_key), org


# ------------------------------------------------------------------------------ cron preview


async def test_preview_applies_the_dst_policy(clients: tuple[Client, Client, UUID]) -> None:
    api, _, _ = clients
    status, body = await api.call(
        "GET",
        "/cron/preview?expression=30+1+*+*+*&timezone=America/New_York"
        "&after=2025-11-01T12:00:00Z&count=3",
    )
    assert status == 200, body
    assert body["data"] == {
        "next_runs": [
            "2025-11-02T05:30:00.000Z",  # 01:30 EDT, the first occurrence only
            "2025-11-03T06:30:00.000Z",
            "2025-11-04T06:30:00.000Z",
        ],
        "interval_minutes": 1440,
    }


async def test_preview_runs_are_strictly_after(clients: tuple[Client, Client, UUID]) -> None:
    api, _, _ = clients
    status, body = await api.call(
        "GET", "/cron/preview?expression=0+*+*+*+*&after=2026-01-01T10:00:00%2B00:00"
    )
    assert status == 200
    assert body["data"]["next_runs"][0] == "2026-01-01T11:00:00.000Z"
    assert len(body["data"]["next_runs"]) == 5 and body["data"]["interval_minutes"] == 60


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("", "expression"),
        ("expression=61+*+*+*+*", "expression"),
        ("expression=*+*+*+*+*+*", "expression"),
        ("expression=*+*+*+*+*&timezone=Mars/Olympus", "timezone"),
        ("expression=*+*+*+*+*&count=0", "count"),
        ("expression=*+*+*+*+*&count=51", "count"),
        ("expression=*+*+*+*+*&count=x", "count"),
        ("expression=*+*+*+*+*&after=yesterday", "after"),
        ("expression=*+*+*+*+*&after=2026-01-01T10:00:00", "after"),
    ],
)
async def test_preview_rejects_bad_input(
    clients: tuple[Client, Client, UUID], query: str, field: str
) -> None:
    api, _, _ = clients
    status, body = await api.call("GET", f"/cron/preview?{query}")
    assert status == 422, body
    assert body["error"]["code"] == "validation_error"
    assert field in body["error"]["details"]


async def test_preview_needs_a_key(store: Store) -> None:
    app = create_app(store, Settings(), SystemClock())
    response = await app.test_client().get("/api/v1/cron/preview?expression=*+*+*+*+*")
    assert response.status_code == 401


# ------------------------------------------------------------------------- execution retry


async def test_retry_of_a_failed_execution_is_a_new_attempt_in_the_same_chain(
    store: Store, clients: tuple[Client, Client, UUID]
) -> None:
    api, other, org = clients
    async with serve_sink() as sink:
        row = await store.insert_task(org, once_task(sink.url + "/status/500", retry_attempts=0), 0)
        await deliver_due(store)
        first = str(row["execution_id"])
        assert (await other.call("POST", f"/executions/{first}/retry"))[0] == 404
        status, body = await api.call("POST", f"/executions/{first}/retry")
        assert status == 202, body
        assert body["data"]["status"] == "pending" and body["data"]["attempt"] == 2
        await deliver_due(store)
    assert [r.headers["x-runlater-attempt"] for r in sink.requests] == ["1", "2"]
    assert {r.headers["webhook-id"] for r in sink.requests} == {first}
    status, detail = await api.call("GET", f"/executions/{body['data']['execution_id']}")
    assert detail["data"]["attempt"] == 2 and detail["data"]["status"] == "failed"


async def test_retry_of_a_successful_or_pending_execution_is_refused(
    store: Store, clients: tuple[Client, Client, UUID]
) -> None:
    api, _, org = clients
    async with serve_sink() as sink:
        done = await store.insert_task(org, once_task(sink.url + "/ok"), 0)
        await deliver_due(store)
    waiting = await store.insert_task(org, once_task(sink.url + "/later"), 3600)
    for execution_id, state in (
        (done["execution_id"], "success"),
        (waiting["execution_id"], "pending"),
    ):
        status, body = await api.call("POST", f"/executions/{execution_id}/retry")
        assert status == 422, body
        assert state in body["error"]["details"]["status"][0]
    assert (await api.call("POST", "/executions/not-a-uuid/retry"))[0] == 404


# ------------------------------------------------------------------------ cancel by queue


async def queued(client: Client, queue: str) -> None:
    status, body = await client.call(
        "POST", "/tasks", json={"url": "http://127.0.0.1:9999/x", "delay": "1h", "queue": queue}
    )
    assert status == 202, body


async def test_cancel_by_queue_cancels_only_that_queue_of_that_org(
    clients: tuple[Client, Client, UUID],
) -> None:
    api, other, _ = clients
    for queue in ("emails", "emails", "reports"):
        await queued(api, queue)
    await queued(other, "emails")
    status, body = await api.call("DELETE", "/tasks?queue=emails")
    assert (status, body) == (200, {"data": {"cancelled": 2}})
    assert (await other.call("DELETE", "/tasks?queue=emails"))[1] == {"data": {"cancelled": 1}}
    assert (await api.call("DELETE", "/tasks?queue=reports"))[1] == {"data": {"cancelled": 1}}
    assert (await api.call("DELETE", "/tasks?queue=emails"))[1] == {"data": {"cancelled": 0}}
    status, body = await api.call("DELETE", "/tasks")
    assert status == 422 and "queue" in body["error"]["details"]
