"""HTTP uptime checks on the real app, database and a local HTTP server, the UptimeChecker
driven by ``run_once(now)``: fields and plan limits, checks spread over their interval, up and
down by status, keyword and threshold, results, uptime percentages, the notification event."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from quart_trio import QuartTrio

from runlater.actors.uptime_checker import UptimeChecker
from runlater.clock import ManualClock
from runlater.delivery.client import Sender
from runlater.delivery.transport import TrioTransport
from runlater.store.postgres import Store
from tests.helpers.api import Api, assert_error
from tests.helpers.factories import make_org
from tests.helpers.sink import Sink, serve_sink

LOCAL = "http://127.0.0.1:8080/"  # never called: the checks that need answers use the sink


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    async with serve_sink() as server:
        yield server


@pytest.fixture
async def checker(store: Store, clock: ManualClock) -> AsyncIterator[UptimeChecker]:
    async with TrioTransport(allow_private=True) as http:
        yield UptimeChecker(store, Sender(http), clock)


def at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def create(api: Api, **fields: Any) -> dict[str, Any]:
    fields.setdefault("name", "homepage")
    fields.setdefault("interval_seconds", 60)
    reply = await api.post("/uptime-checks", json=fields)
    assert reply.status == 201, reply.body
    data: dict[str, Any] = reply.body["data"]
    return data


async def test_a_new_check_has_its_defaults_and_starts_within_its_interval(
    api: Api, clock: ManualClock
) -> None:
    data = await create(api, url=LOCAL)
    assert (data["method"], data["timeout_ms"], data["failure_threshold"]) == ("GET", 10000, 2)
    assert data["status"] == "new" and data["enabled"] is True
    assert data["uptime"] == {"24h": None, "7d": None, "30d": None, "90d": None}
    first = at(data["next_check_at"])
    start = clock.now().replace(microsecond=0)
    assert start <= first < start + timedelta(seconds=60) and first.microsecond == 0


async def test_checks_are_spread_over_their_interval(api: Api) -> None:
    starts = [at((await create(api, name=f"c{i}", url=LOCAL))["next_check_at"]) for i in range(40)]
    seconds = {int((s - min(starts)).total_seconds()) for s in starts}
    assert len(seconds) >= 20, sorted(seconds)  # not all at the top of the minute


async def test_the_plan_sets_the_shortest_interval(store: Store, app: QuartTrio) -> None:
    _, key = await make_org(store, "Freeco", tier="free")
    free = Api(app, key)
    reply = await free.post(
        "/uptime-checks", json={"name": "x", "url": LOCAL, "interval_seconds": 60}
    )
    error = assert_error(reply, 422, "validation_error", {"interval_seconds"})
    assert "at least 300" in error["details"]["interval_seconds"][0]
    await create(free, url=LOCAL, interval_seconds=300)


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"name": "x", "interval_seconds": 60}, {"url"}),
        (
            {"name": "x", "url": LOCAL, "interval_seconds": 29},
            {"interval_seconds"},
        ),
        ({"name": "x", "url": "ftp://example.com/", "interval_seconds": 60}, {"url"}),
        (
            {"name": "x", "url": LOCAL, "interval_seconds": 60, "method": "PUT"},
            {"method"},
        ),
        (
            {"name": "x", "url": LOCAL, "interval_seconds": 60, "failure_threshold": 0},
            {"failure_threshold"},
        ),
        (
            {
                "name": "x",
                "url": LOCAL,
                "interval_seconds": 60,
                "expected_status_codes": "ok",
            },
            {"expected_status_codes"},
        ),
        ({"name": "x", "url": LOCAL, "interval_seconds": 60, "keywrd": "a"}, {"keywrd"}),
    ],
)
async def test_invalid_checks_are_refused(api: Api, body: dict[str, Any], fields: set[str]) -> None:
    assert_error(await api.post("/uptime-checks", json=body), 422, "validation_error", fields)


async def test_a_metadata_address_is_refused(api: Api) -> None:
    reply = await api.post(
        "/uptime-checks",
        json={"name": "x", "url": "http://169.254.169.254/latest", "interval_seconds": 60},
    )
    assert_error(reply, 422, "url_not_allowed", {"url"})


async def test_up_then_down_after_the_threshold_then_up_again(
    api: Api, store: Store, sink: Sink, checker: UptimeChecker, clock: ManualClock
) -> None:
    data = await create(api, url=f"{sink.url}/ok", failure_threshold=2)
    cid = UUID(data["id"])
    due = at(data["next_check_at"])
    [result] = (await checker.run_once(due)).results
    assert result.ok and result.status_code == 200
    state = (await api.get(f"/uptime-checks/{cid}")).body["data"]
    assert state["status"] == "up" and state["last_response_ms"] is not None
    assert at(state["next_check_at"]) == due + timedelta(seconds=60)  # phase kept
    await api.patch(f"/uptime-checks/{cid}", json={"url": f"{sink.url}/status/503"})
    due = at((await api.get(f"/uptime-checks/{cid}")).body["data"]["next_check_at"])
    [failed] = (await checker.run_once(due)).results
    assert not failed.ok and failed.error == "HTTP 503"
    assert (await api.get(f"/uptime-checks/{cid}")).body["data"]["status"] == "up"  # 1 of 2
    [failed] = (await checker.run_once(due + timedelta(seconds=60))).results
    state = (await api.get(f"/uptime-checks/{cid}")).body["data"]
    assert state["status"] == "down" and state["last_error"] == "HTTP 503"
    async with _events(store) as events:
        assert [(e["event"], e["resource_type"]) for e in events] == [
            ("monitor.down", "uptime_check")
        ]
    await api.patch(f"/uptime-checks/{cid}", json={"url": f"{sink.url}/ok"})
    [ok] = (await checker.run_once(due + timedelta(seconds=120))).results
    assert ok.ok
    assert (await api.get(f"/uptime-checks/{cid}")).body["data"]["status"] == "up"
    async with _events(store) as events:
        assert [e["event"] for e in events] == ["monitor.down", "monitor.up"]
    results = (await api.get(f"/uptime-checks/{cid}/results")).body["data"]
    assert [r["ok"] for r in results] == [True, False, False, True]
    clock.set(due + timedelta(seconds=121))
    uptime = (await api.get(f"/uptime-checks/{cid}")).body["data"]["uptime"]
    assert uptime["24h"] == 50.0 and uptime["7d"] == 50.0 and uptime["90d"] == 50.0


async def test_a_missing_keyword_is_a_failure(api: Api, sink: Sink, checker: UptimeChecker) -> None:
    data = await create(api, url=f"{sink.url}/body/hello", keyword="Welcome", failure_threshold=1)
    [result] = (await checker.run_once(at(data["next_check_at"]))).results
    assert not result.ok and result.error == "keyword 'Welcome' not found in the response"
    assert (await api.get(f"/uptime-checks/{data['id']}")).body["data"]["status"] == "down"


async def test_after_downtime_a_check_runs_once_and_keeps_its_phase(
    api: Api, sink: Sink, checker: UptimeChecker
) -> None:
    data = await create(api, url=f"{sink.url}/ok")
    due = at(data["next_check_at"])
    later = due + timedelta(seconds=60 * 10 + 5)
    assert len((await checker.run_once(later)).results) == 1
    assert (await checker.run_once(later)).results == []
    state = (await api.get(f"/uptime-checks/{data['id']}")).body["data"]
    assert at(state["next_check_at"]) == due + timedelta(seconds=60 * 11)


async def test_a_paused_check_is_not_run(api: Api, sink: Sink, checker: UptimeChecker) -> None:
    data = await create(api, url=f"{sink.url}/ok")
    await api.patch(f"/uptime-checks/{data['id']}", json={"status": "paused"})
    assert (await checker.run_once(at(data["next_check_at"]) + timedelta(days=1))).results == []
    assert sink.requests == []


async def test_another_organizations_check_is_not_found(api: Api, other: Api) -> None:
    data = await create(api, url=LOCAL)
    for reply in (
        await other.get(f"/uptime-checks/{data['id']}"),
        await other.patch(f"/uptime-checks/{data['id']}", json={"name": "mine"}),
        await other.get(f"/uptime-checks/{data['id']}/results"),
        await other.delete(f"/uptime-checks/{data['id']}"),
    ):
        assert_error(reply, 404, "not_found")
    assert (await other.get("/uptime-checks")).body["data"] == []


class _events:
    """The notification events written so far, oldest first."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def __aenter__(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = await self.store._run(
            lambda conn: conn.fetch("select * from notification_events order by occurred_at, id")
        )
        return [dict(r) for r in rows]

    async def __aexit__(self, *exc: object) -> None:
        return None
