"""Every successful mutating API call leaves an audit entry; reads and refused calls do not."""

from __future__ import annotations

from typing import Any

from quart_trio import QuartTrio

from runlater.clock import SystemClock
from runlater.config import Settings
from runlater.store.postgres import Store
from runlater.web.app import create_app
from tests.helpers.factories import make_org

TARGET = "http://127.0.0.1:9999/x"


async def call(
    app: QuartTrio,
    key: str,
    method: str,
    path: str,
    *,
    headers_extra: dict[str, str] | None = None,
    **kw: Any,
) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {key}", **(headers_extra or {})}
    response = await app.test_client().open("/api/v1" + path, method=method, headers=headers, **kw)
    text = await response.get_data(as_text=True)
    return response.status_code, (await response.get_json()) if text else None


async def test_mutations_are_audited_with_actor_action_and_resource(store: Store) -> None:
    app = create_app(store, Settings(allow_private_targets=True), SystemClock())
    _, key = await make_org(store, "Acme")
    _, other_key = await make_org(store, "Globex")
    _, keys = await call(app, key, "GET", "/api-keys")
    key_row_id = keys["data"][0]["id"]

    _, created = await call(app, key, "POST", "/tasks", json={"url": TARGET, "cron": "0 * * * *"})
    task_id = created["data"]["id"]
    await call(app, key, "PATCH", f"/tasks/{task_id}", json={"name": "hourly"})
    await call(app, key, "POST", f"/tasks/{task_id}/trigger")
    await call(app, key, "GET", f"/tasks/{task_id}")  # a read: not audited
    refused, _ = await call(app, key, "POST", "/tasks", json={"url": TARGET, "delay": "soon"})
    assert refused == 400  # refused: not audited
    await call(app, key, "DELETE", f"/tasks/{task_id}")

    status, log = await call(app, key, "GET", "/audit-log")
    assert status == 200
    entries = [(e["action"], e["resource_id"], e["status_code"]) for e in log["data"]]
    assert entries == [
        ("DELETE /api/v1/tasks/<task_id>", task_id, 204),
        ("POST /api/v1/tasks/<task_id>/trigger", task_id, 202),
        ("PATCH /api/v1/tasks/<task_id>", task_id, 200),
        ("POST /api/v1/tasks", task_id, 201),
    ]
    assert {e["actor"]["type"] for e in log["data"]} == {"api_key"}
    assert {e["actor"]["id"] for e in log["data"]} == {key_row_id}
    assert all(e["inserted_at"].endswith("Z") for e in log["data"])
    assert (log["has_more"], log["limit"], log["offset"]) == (False, 50, 0)

    _, theirs = await call(app, other_key, "GET", "/audit-log")
    assert theirs["data"] == []
    status, page = await call(app, key, "GET", "/audit-log?limit=2&offset=1")
    assert status == 200 and len(page["data"]) == 2 and page["has_more"] is True
    assert (await call(app, key, "GET", "/audit-log?limit=0"))[0] == 422


async def test_an_idempotent_replay_is_not_audited_again(store: Store) -> None:
    app = create_app(store, Settings(allow_private_targets=True), SystemClock())
    _, key = await make_org(store)
    for _ in range(3):
        status, _ = await call(
            app,
            key,
            "POST",
            "/tasks",
            json={"url": TARGET, "delay": "1h"},
            headers_extra={"Idempotency-Key": "order-42"},
        )
        assert status == 202
    _, log = await call(app, key, "GET", "/audit-log")
    assert [e["action"] for e in log["data"]] == ["POST /api/v1/tasks"]
