"""``PUT /sync`` with ``endpoints``: inbound endpoints declared as a list, matched by name, in
the same one transaction as tasks and monitors (docs/api.md "Declarative sync")."""

from __future__ import annotations

from typing import Any

from tests.helpers.api import TARGET, Api, assert_error

STRIPE = {"name": "stripe", "forward_urls": [TARGET], "verify": {"scheme": "stripe", "secret": "s"}}
GITHUB = {"name": "github", "forward_urls": [TARGET], "use_queue": True}


async def sync(api: Api, payload: dict[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
    reply = await api.call("PUT", "/sync?dry_run=true" if dry_run else "/sync", json=payload)
    assert reply.status == 200, reply.body
    data: dict[str, Any] = reply.body["data"]
    return data


async def endpoints(api: Api) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in (await api.get("/endpoints")).body["data"]}


async def test_declared_endpoints_are_created_then_unchanged_then_updated(api: Api) -> None:
    data = await sync(api, {"endpoints": [STRIPE, GITHUB]})
    assert data["endpoints"] == {
        "created": ["stripe", "github"],
        "updated": [],
        "deleted": [],
        "unchanged": [],
    }
    first = await endpoints(api)
    assert first["stripe"]["verify"]["scheme"] == "stripe"
    assert first["github"]["use_queue"] is True
    again = await sync(api, {"endpoints": [STRIPE, GITHUB]})
    assert again["endpoints"]["unchanged"] == ["stripe", "github"]
    changed = await sync(api, {"endpoints": [STRIPE, {**GITHUB, "retry_attempts": 1}]})
    assert changed["endpoints"]["updated"] == ["github"]
    assert changed["endpoints"]["unchanged"] == ["stripe"]
    after = await endpoints(api)
    assert after["github"]["retry_attempts"] == 1
    assert after["github"]["slug"] == first["github"]["slug"]  # its inbound URL keeps working


async def test_delete_removed_deletes_only_endpoints_sync_manages(api: Api) -> None:
    assert (await api.post("/endpoints", json={"name": "hand made"})).status == 201
    await sync(api, {"endpoints": [STRIPE, GITHUB]})
    data = await sync(api, {"endpoints": [STRIPE], "delete_removed": True})
    assert data["endpoints"]["deleted"] == ["github"]
    assert set(await endpoints(api)) == {"stripe", "hand made"}


async def test_a_dry_run_changes_nothing(api: Api) -> None:
    data = await sync(api, {"endpoints": [STRIPE]}, dry_run=True)
    assert data["dry_run"] is True and data["endpoints"]["created"] == ["stripe"]
    assert await endpoints(api) == {}


async def test_an_invalid_endpoint_rolls_everything_back(api: Api) -> None:
    payload = {
        "tasks": [{"name": "nightly", "url": TARGET, "cron": "0 3 * * *"}],
        "endpoints": [
            STRIPE,
            {"name": "bad", "forward_urls": ["ftp://x"]},
            {"forward_urls": [TARGET]},
            {"name": "typo", "forwrd_urls": []},
            {**GITHUB, "name": "stripe"},
        ],
    }
    error = assert_error(
        await api.call("PUT", "/sync", json=payload),
        422,
        "validation_error",
        {
            "endpoints[1].forward_urls",
            "endpoints[2].name",
            "endpoints[3].forwrd_urls",
            "endpoints[4].name",
        },
    )
    assert "nothing was changed" in error["message"]
    assert await endpoints(api) == {}
    assert (await api.get("/tasks")).body["data"] == []


async def test_endpoints_left_out_are_not_touched(api: Api) -> None:
    await sync(api, {"endpoints": [STRIPE]})
    data = await sync(api, {"monitors": [], "delete_removed": True})
    assert "endpoints" not in data
    assert set(await endpoints(api)) == {"stripe"}
