"""``PUT /sync`` with ``monitors``: heartbeat monitors declared as a list, matched by name, in
the same one transaction as the tasks (docs/api.md "Declarative sync")."""

from __future__ import annotations

from typing import Any

from runlater.store.postgres import Store
from tests.helpers.api import TARGET, Api, assert_error

BACKUP = {"name": "backup", "cron": "0 3 * * *", "timezone": "Europe/Berlin"}
WORKER = {"name": "worker", "interval_seconds": 300, "grace_period_seconds": 60}


async def sync(api: Api, payload: dict[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
    reply = await api.call("PUT", "/sync?dry_run=true" if dry_run else "/sync", json=payload)
    assert reply.status == 200, reply.body
    data: dict[str, Any] = reply.body["data"]
    return data


async def monitors(api: Api) -> dict[str, dict[str, Any]]:
    return {m["name"]: m for m in (await api.get("/monitors")).body["data"]}


async def test_declared_monitors_are_created_then_unchanged_then_updated(api: Api) -> None:
    data = await sync(api, {"monitors": [BACKUP, WORKER]})
    assert data["monitors"] == {
        "created": ["backup", "worker"],
        "updated": [],
        "deleted": [],
        "unchanged": [],
    }
    assert data["tasks"]["created"] == []
    first = await monitors(api)
    assert first["backup"]["cron_expression"] == "0 3 * * *"
    assert first["worker"]["interval_seconds"] == 300
    again = await sync(api, {"monitors": [BACKUP, WORKER]})
    assert again["monitors"]["unchanged"] == ["backup", "worker"]
    changed = await sync(api, {"monitors": [BACKUP, {**WORKER, "grace_period_seconds": 120}]})
    assert changed["monitors"]["updated"] == ["worker"]
    assert changed["monitors"]["unchanged"] == ["backup"]
    after = await monitors(api)
    assert after["worker"]["grace_period_seconds"] == 120
    assert after["worker"]["ping_token"] == first["worker"]["ping_token"]  # URLs keep working


async def test_delete_removed_deletes_only_monitors_sync_manages(api: Api) -> None:
    reply = await api.post("/monitors", json={"name": "hand made", "interval_seconds": 600})
    assert reply.status == 201
    await sync(api, {"monitors": [BACKUP, WORKER]})
    data = await sync(api, {"monitors": [BACKUP], "delete_removed": True})
    assert data["monitors"]["deleted"] == ["worker"]
    assert set(await monitors(api)) == {"backup", "hand made"}


async def test_a_dry_run_changes_nothing(api: Api) -> None:
    data = await sync(api, {"monitors": [BACKUP]}, dry_run=True)
    assert data["dry_run"] is True and data["monitors"]["created"] == ["backup"]
    assert await monitors(api) == {}


async def test_an_invalid_monitor_rolls_back_the_tasks_too(api: Api, store: Store) -> None:
    payload = {
        "tasks": [{"name": "nightly", "url": TARGET, "cron": "0 3 * * *"}],
        "monitors": [BACKUP, {"name": "bad", "interval_seconds": 10}, {"interval_seconds": 60}],
    }
    error = assert_error(
        await api.call("PUT", "/sync", json=payload),
        422,
        "validation_error",
        {"monitors[1].interval_seconds", "monitors[2].name"},
    )
    assert "nothing was changed" in error["message"]
    assert await monitors(api) == {}
    assert (await api.get("/tasks")).body["data"] == []


async def test_a_monitor_declared_twice_is_refused(api: Api) -> None:
    reply = await api.call(
        "PUT", "/sync", json={"monitors": [BACKUP, {**WORKER, "name": "backup"}]}
    )
    error = assert_error(reply, 422, "validation_error", {"monitors[1].name"})
    assert "monitors[0]" in error["details"]["monitors[1].name"][0]


async def test_monitors_left_out_are_not_touched(api: Api) -> None:
    await sync(api, {"monitors": [BACKUP]})
    data = await sync(
        api, {"tasks": [{"name": "t", "url": TARGET, "cron": "0 1 * * *"}], "delete_removed": True}
    )
    assert "monitors" not in data
    assert set(await monitors(api)) == {"backup"}
