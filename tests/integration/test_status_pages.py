"""Status pages (``/api/v1/status-page``, public ``/s/{slug}``), badges and ``/status`` on the
real app and database: off by default, items checked against the organization, 90 daily
bars, the state read again as it changes, SVG badges with short caching, Runlater's own
health and scheduling lateness."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID
from xml.etree import ElementTree

from quart_trio import QuartTrio

from runlater.actors.monitor import Monitor
from runlater.clock import ManualClock
from runlater.store.postgres import Store
from runlater.web.public import status as public_status
from tests.helpers.api import TARGET, Api, assert_error, create_once


async def monitor(api: Api, name: str = "backup", **fields: Any) -> dict[str, Any]:
    fields.setdefault("interval_seconds", 60)
    fields.setdefault("grace_period_seconds", 0)
    reply = await api.post("/monitors", json={"name": name, **fields})
    assert reply.status == 201, reply.body
    data: dict[str, Any] = reply.body["data"]
    return data


async def get(app: QuartTrio, path: str) -> tuple[int, str, Any]:
    response = await app.test_client().get(path)
    return response.status_code, await response.get_data(as_text=True), response.headers


async def test_the_page_is_off_by_default_with_the_organizations_names(
    api: Api, app: QuartTrio
) -> None:
    data = (await api.get("/status-page")).body["data"]
    assert data["enabled"] is False and data["slug"] == "acme" and data["title"] == "Acme"
    assert data["items"] == [] and data["url"].endswith("/s/acme")
    status, text, _ = await get(app, "/s/acme")
    assert status == 404 and "No such status page" in text


async def test_an_enabled_page_shows_its_items_live(
    api: Api, app: QuartTrio, store: Store, clock: ManualClock, monkeypatch: Any
) -> None:
    monkeypatch.setattr(public_status, "CACHE_S", 0.0)
    backup = await monitor(api)
    reply = await api.put(
        "/status-page",
        json={
            "enabled": True,
            "slug": "acme-status",
            "title": "Acme systems",
            "items": [{"type": "monitor", "id": backup["id"]}, {"type": "queue", "name": "q1"}],
        },
    )
    assert reply.status == 422  # the queue does not exist yet
    assert "no queue 'q1'" in reply.body["error"]["details"]["items[1]"][0]
    reply = await api.put(
        "/status-page",
        json={
            "enabled": True,
            "slug": "acme-status",
            "title": "Acme systems",
            "items": [{"type": "monitor", "id": backup["id"]}],
        },
    )
    assert reply.status == 200, reply.body
    await app.test_client().post(f"/ping/{backup['ping_token']}")
    status, text, headers = await get(app, "/s/acme-status")
    assert status == 200 and "Acme systems" in text and "All systems operational" in text
    assert text.count('class="bar ') == 90
    assert headers["Cache-Control"].startswith("public, max-age=")
    # The monitor goes down: the JSON the page polls says so.
    tick = await Monitor(store, clock, interval_s=5).run_once(clock.now() + timedelta(seconds=61))
    assert tick.marked == [UUID(backup["id"])]
    response = await app.test_client().get("/s/acme-status/status.json")
    body = await response.get_json()
    assert response.status_code == 200
    assert body["overall"] == "Some systems are down" and body["down"] is True
    [item] = body["items"]
    assert (item["name"], item["status"], item["type"]) == ("backup", "down", "monitor")
    assert len(item["days"]) == 90
    assert item["days"][-1]["good"] == 1 and item["days"][-1]["bad"] == 1
    assert item["days"][-1]["level"] == "partial"


async def test_another_organizations_items_and_taken_slugs_are_refused(
    api: Api, other: Api
) -> None:
    theirs = await monitor(other, "theirs")
    reply = await api.put("/status-page", json={"items": [{"type": "monitor", "id": theirs["id"]}]})
    assert_error(reply, 422, "validation_error", {"items[0]"})
    reply = await other.put("/status-page", json={"enabled": True, "slug": "acme"})
    assert reply.status == 200  # the slug is free until Acme saves its page
    reply = await api.put("/status-page", json={"enabled": True})
    error = assert_error(reply, 422, "validation_error", {"slug"})
    assert "taken" in error["details"]["slug"][0]
    assert_error(
        await api.put("/status-page", json={"slug": "Not A Slug"}),
        422,
        "validation_error",
        {"slug"},
    )
    assert_error(
        await api.put("/status-page", json={"colour": "red"}), 422, "validation_error", {"colour"}
    )


async def test_badges_are_svg_with_short_caching(api: Api, app: QuartTrio) -> None:
    backup = await monitor(api, "nightly backup")
    await app.test_client().post(f"/ping/{backup['ping_token']}")
    status, text, headers = await get(app, f"/badge/{backup['badge_token']}/status.svg")
    assert status == 200 and headers["Content-Type"].startswith("image/svg+xml")
    assert headers["Cache-Control"] == "public, max-age=30"
    svg = ElementTree.fromstring(text)
    assert svg.tag == "{http://www.w3.org/2000/svg}svg"
    assert "nightly backup: up" in text
    status, text, _ = await get(app, f"/badge/{backup['badge_token']}/uptime.svg")
    assert status == 200 and "uptime 30d: 100.00%" in text
    task = await create_once(api, url=TARGET, name="<script>")
    token = (await api.get(f"/tasks/{task['task_id']}")).body["data"]["badge_token"]
    status, text, _ = await get(app, f"/badge/{token}/status.svg")
    assert status == 200 and "&lt;script&gt;: waiting" in text and "<script>" not in text
    assert (await get(app, "/badge/not-a-token/status.svg"))[0] == 404


async def test_runlaters_own_status(app: QuartTrio, monkeypatch: Any) -> None:
    monkeypatch.setattr(public_status, "CACHE_S", 0.0)
    status, text, _ = await get(app, "/status")
    assert status == 200 and "Runlater status" in text and "Scheduling lateness" in text
    body = await (await app.test_client().get("/status.json")).get_json()
    assert body["components"]["api"] == "operational"
    assert body["components"]["database"] == "operational"
    assert body["components"]["scheduler"] == "down"  # no leader in this test: no elector
    assert body["lateness"] == []


async def test_status_shows_how_late_executions_started(
    api: Api, app: QuartTrio, store: Store, monkeypatch: Any
) -> None:
    from runlater.actors.worker import Worker
    from runlater.delivery.client import Deliverer
    from runlater.delivery.transport import TrioTransport
    from tests.helpers.sink import serve_sink

    monkeypatch.setattr(public_status, "CACHE_S", 0.0)
    async with serve_sink() as sink, TrioTransport(allow_private=True) as http:
        for n in range(3):
            await create_once(api, url=f"{sink.url}/ok", name=f"t{n}")
        await Worker(store, Deliverer(http), node="t", lease_margin_s=60).run_once(10)
    body = await (await app.test_client().get("/status.json")).get_json()
    [today] = body["lateness"]
    assert today["started"] == 3
    assert today["p50_ms"] is not None and today["p95_ms"] >= today["p50_ms"]
    status, text, _ = await get(app, "/status")
    assert status == 200 and today["day"] in text
