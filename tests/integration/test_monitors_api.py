"""``/api/v1/monitors`` and the public ``/ping/{token}`` endpoints, on the real app and database
(docs/api.md "Monitors"): the resource's fields and errors, every ping form and its answer,
what each ping does to the monitor, bodies, rid pairing, pausing, disabling, the rate limit."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest
from quart_trio import QuartTrio

from runlater.clock import ManualClock
from runlater.config import Settings
from runlater.store.postgres import Store
from runlater.web.app import create_app
from tests.helpers.api import Api, assert_error

BASE = "http://127.0.0.1:8000"


def iso(value: str | None) -> datetime:
    assert value is not None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def make_monitor(api: Api, **fields: Any) -> dict[str, Any]:
    fields.setdefault("name", f"job-{uuid4().hex[:8]}")
    if "cron_expression" not in fields and "cron" not in fields:
        fields.setdefault("interval_seconds", 3600)
    reply = await api.post("/monitors", json=fields)
    assert reply.status == 201, reply.body
    return reply.body["data"]


async def ping(
    app: QuartTrio,
    token: str,
    suffix: str = "",
    *,
    method: str = "POST",
    body: bytes = b"",
    query: str = "",
    headers: dict[str, str] | None = None,
) -> tuple[int, str, Any]:
    path = f"/ping/{token}" + (f"/{suffix}" if suffix else "") + (f"?{query}" if query else "")
    response = await app.test_client().open(  # type: ignore[call-arg]
        path, method=method, data=body, headers=headers or {}
    )
    return response.status_code, await response.get_data(as_text=True), response.headers


async def state(api: Api, monitor: dict[str, Any]) -> dict[str, Any]:
    reply = await api.get(f"/monitors/{monitor['id']}")
    assert reply.status == 200, reply.body
    return reply.body["data"]


async def test_a_new_monitor_has_every_field_of_the_contract(api: Api) -> None:
    reply = await api.post(
        "/monitors",
        json={"name": "nightly backup", "cron": "0 3 * * *", "timezone": "Europe/Berlin"},
    )
    assert reply.status == 201, reply.body
    data = reply.body["data"]
    assert {
        "id",
        "name",
        "ping_token",
        "ping_url",
        "schedule_type",
        "interval_seconds",
        "cron_expression",
        "timezone",
        "grace_period_seconds",
        "status",
        "enabled",
        "notify_on_failure",
        "notify_on_recovery",
        "on_failure_url",
        "on_recovery_url",
        "alert_after",
        "last_ping_at",
        "next_expected_at",
        "inserted_at",
        "updated_at",
    } <= set(data)
    assert data["schedule_type"] == "cron" and data["cron_expression"] == "0 3 * * *"
    assert data["interval_seconds"] is None and data["timezone"] == "Europe/Berlin"
    assert data["status"] == "new" and data["enabled"] is True
    assert data["grace_period_seconds"] == 300 and data["alert_after"] == 1
    assert data["notify_on_failure"] is True and data["notify_on_recovery"] is True
    assert data["ping_url"] == f"{BASE}/ping/{data['ping_token']}"
    assert data["last_ping_at"] is None and data["next_expected_at"] is None
    assert len(data["badge_token"]) >= 20
    listed = await api.get("/monitors")
    assert [m["id"] for m in listed.body["data"]] == [data["id"]]
    assert listed.body["has_more"] is False


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"name": "x"}, {"interval_seconds", "cron_expression"}),
        (
            {"name": "x", "interval_seconds": 60, "cron": "* * * * *"},
            {"interval_seconds", "cron"},  # named as sent
        ),
        ({"interval_seconds": 60}, {"name"}),
        ({"name": "x", "interval_seconds": 59}, {"interval_seconds"}),
        ({"name": "x", "interval_seconds": 604801}, {"interval_seconds"}),
        (
            {"name": "x", "interval_seconds": 60, "grace_period_seconds": 3601},
            {"grace_period_seconds"},
        ),
        ({"name": "x", "cron": "61 * * * *"}, {"cron"}),
        ({"name": "x", "cron": "0 3 * * *", "timezone": "Mars/Base"}, {"timezone"}),
        ({"name": "x", "interval_seconds": 60, "grace": 5}, {"grace"}),
        ({"name": "x", "interval_seconds": 60, "status": "up"}, {"status"}),
        ({"name": "x", "interval_seconds": 60, "on_failure_url": "ftp://x"}, {"on_failure_url"}),
    ],
)
async def test_invalid_monitors_are_refused_with_the_field_named(
    api: Api, body: dict[str, Any], fields: set[str]
) -> None:
    error = assert_error(await api.post("/monitors", json=body), 422, "validation_error", fields)
    assert (await api.get("/monitors")).body["data"] == []
    if "grace" in fields:
        assert "did you mean 'grace_seconds'" in error["details"]["grace"][0] or (
            "grace_period_seconds" in error["details"]["grace"][0]
        )


async def test_a_second_monitor_of_the_same_name_is_refused(api: Api) -> None:
    await make_monitor(api, name="backup")
    reply = await api.post("/monitors", json={"name": "backup", "interval_seconds": 60})
    error = assert_error(reply, 422, "validation_error", {"name"})
    assert "'backup' exists already" in error["details"]["name"][0]
    other = await make_monitor(api, name="restore")
    reply = await api.patch(f"/monitors/{other['id']}", json={"name": "backup"})
    assert_error(reply, 422, "validation_error", {"name"})
    assert len((await api.get("/monitors")).body["data"]) == 2


async def test_each_ping_form_answers_as_healthchecks_does(
    api: Api, app: QuartTrio, clock: ManualClock
) -> None:
    monitor = await make_monitor(api, interval_seconds=600, grace_period_seconds=60)
    token = monitor["ping_token"]
    status, text, headers = await ping(app, token, method="GET")
    assert (status, text) == (200, "OK")
    assert headers["Content-Type"].startswith("text/plain")
    now = clock.now()
    data = await state(api, monitor)
    assert data["status"] == "up"
    assert iso(data["last_ping_at"]) == now.replace(microsecond=now.microsecond // 1000 * 1000)
    assert iso(data["next_expected_at"]) - iso(data["last_ping_at"]) == timedelta(seconds=600)

    assert (await ping(app, token, "fail"))[:2] == (200, "OK")
    assert (await state(api, monitor))["status"] == "down"
    assert (await ping(app, token, "0", method="HEAD"))[0] == 200
    assert (await state(api, monitor))["status"] == "up"
    assert (await ping(app, token, "1"))[:2] == (200, "OK")
    assert (await state(api, monitor))["status"] == "down"
    assert (await ping(app, token, "255"))[0] == 200
    assert (await ping(app, token, "256"))[0] == 400
    assert (await ping(app, token, "-1"))[0] == 400
    assert (await ping(app, token, "nonsense"))[:2] == (404, "not found")
    assert (await ping(app, str(uuid4())))[:2] == (404, "not found")
    assert (await ping(app, "not-a-uuid", "start"))[:2] == (404, "not found")
    assert (await ping(app, token, "log", body=b"still down"))[0] == 200
    assert (await state(api, monitor))["status"] == "down"
    pings = (await api.get(f"/monitors/{monitor['id']}/pings")).body["data"]
    assert [p["kind"] for p in pings] == ["log", "fail", "fail", "success", "fail", "success"]
    assert [p["exit_status"] for p in pings] == [None, 255, 1, 0, None, None]
    assert pings[0]["body"] == "still down"
    assert [p["method"] for p in pings][-1] == "GET" and pings[3]["method"] == "HEAD"


async def test_a_start_then_finish_records_the_duration_and_rid_pairs_them(
    api: Api, app: QuartTrio, clock: ManualClock
) -> None:
    monitor = await make_monitor(api, interval_seconds=3600)
    token = monitor["ping_token"]
    first, second = uuid4(), uuid4()
    await ping(app, token, "start", query=f"rid={first}")
    clock.advance(5)
    await ping(app, token, "start", query=f"rid={second}")
    data = await state(api, monitor)
    assert data["started_at"] is not None and data["status"] == "new"
    clock.advance(7)
    # The finish of the first run: 12 s after its start, whatever started since.
    await ping(app, token, "0", query=f"rid={first}")
    pings = (await api.get(f"/monitors/{monitor['id']}/pings")).body["data"]
    assert pings[0]["rid"] == str(first) and pings[0]["duration_ms"] == 12_000
    data = await state(api, monitor)
    assert data["status"] == "up" and data["last_duration_ms"] == 12_000
    assert (await ping(app, token, query="rid=zzz"))[0] == 400


async def test_the_body_is_stored_up_to_100_kib(api: Api, app: QuartTrio) -> None:
    monitor = await make_monitor(api)
    output = b"backup finished\n" + b"x" * (150 * 1024)
    assert (await ping(app, monitor["ping_token"], body=output))[0] == 200
    stored = (await api.get(f"/monitors/{monitor['id']}/pings")).body["data"][0]
    assert stored["body_truncated"] is True
    assert stored["body"].startswith("backup finished\n")
    assert len(stored["body"].encode()) == 100 * 1024
    assert (await ping(app, monitor["ping_token"], body=b"\xff\xfe log"))[0] == 200
    assert (await api.get(f"/monitors/{monitor['id']}/pings")).body["data"][0]["body"] == (
        "\ufffd\ufffd log"
    )


async def test_pausing_stops_the_watch_and_a_ping_resumes_it(api: Api, app: QuartTrio) -> None:
    monitor = await make_monitor(api)
    await ping(app, monitor["ping_token"])
    reply = await api.patch(f"/monitors/{monitor['id']}", json={"status": "paused"})
    assert reply.status == 200 and reply.body["data"]["status"] == "paused", reply.body
    await ping(app, monitor["ping_token"])
    assert (await state(api, monitor))["status"] == "up"


async def test_a_disabled_monitor_answers_410_and_records_nothing(api: Api, app: QuartTrio) -> None:
    monitor = await make_monitor(api)
    await api.patch(f"/monitors/{monitor['id']}", json={"enabled": False})
    assert (await ping(app, monitor["ping_token"]))[0] == 410
    assert (await api.get(f"/monitors/{monitor['id']}/pings")).body["data"] == []
    reply = await api.patch(f"/monitors/{monitor['id']}", json={"enabled": True})
    assert reply.body["data"]["status"] == "new"
    assert (await ping(app, monitor["ping_token"]))[0] == 200


async def test_an_edit_changes_the_schedule_and_keeps_the_tokens(api: Api) -> None:
    monitor = await make_monitor(api, interval_seconds=600)
    reply = await api.patch(
        f"/monitors/{monitor['id']}",
        json={"cron_expression": "*/5 * * * *", "grace_period_seconds": 0, "alert_after": 3},
    )
    assert reply.status == 200, reply.body
    data = reply.body["data"]
    assert data["schedule_type"] == "cron" and data["interval_seconds"] is None
    assert data["grace_period_seconds"] == 0 and data["alert_after"] == 3
    assert data["ping_token"] == monitor["ping_token"]
    reply = await api.patch(f"/monitors/{monitor['id']}", json={"interval_seconds": 120})
    assert reply.body["data"]["schedule_type"] == "interval"
    assert reply.body["data"]["cron_expression"] is None
    assert_error(
        await api.patch(f"/monitors/{monitor['id']}", json={"name": None}),
        422,
        "validation_error",
        {"name"},
    )


async def test_a_deleted_monitor_is_gone_with_its_ping_url(api: Api, app: QuartTrio) -> None:
    monitor = await make_monitor(api)
    assert (await api.delete(f"/monitors/{monitor['id']}")).status == 204
    assert (await api.get(f"/monitors/{monitor['id']}")).status == 404
    assert (await ping(app, monitor["ping_token"]))[:2] == (404, "not found")


async def test_another_organizations_monitor_is_not_found(api: Api, other: Api) -> None:
    monitor = await make_monitor(api)
    for reply in (
        await other.get(f"/monitors/{monitor['id']}"),
        await other.patch(f"/monitors/{monitor['id']}", json={"name": "mine"}),
        await other.get(f"/monitors/{monitor['id']}/pings"),
        await other.delete(f"/monitors/{monitor['id']}"),
    ):
        assert_error(reply, 404, "not_found")
    assert (await other.get("/monitors")).body["data"] == []
    assert (await state(api, monitor))["name"] == monitor["name"]


async def test_pings_of_one_token_are_rate_limited(store: Store, clock: ManualClock) -> None:
    app = create_app(
        store, Settings(allow_private_targets=True, ping_rate_limit_per_token=3), clock
    )
    from tests.helpers.factories import make_org

    _, key = await make_org(store, "Limited")
    monitor = await make_monitor(Api(app, key))
    other_monitor = await make_monitor(Api(app, key))
    answers = [(await ping(app, monitor["ping_token"]))[:2] for _ in range(4)]
    assert answers[:3] == [(200, "OK")] * 3
    status, text, headers = await ping(app, monitor["ping_token"])
    assert (status, text) == (429, "rate limited") and int(headers["Retry-After"]) >= 1
    assert (await ping(app, other_monitor["ping_token"]))[0] == 200
    clock.advance(20)  # one token back (3 per minute)
    assert (await ping(app, monitor["ping_token"]))[0] == 200
