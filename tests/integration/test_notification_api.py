"""``/notification-channels``, ``/notifications`` and ``/maintenance-windows`` on the real app:
fields, defaults, refusals with the field named, the SSRF check of channel URLs, a channel's
test through the real Notifier and a local server, and isolation between organizations."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from quart_trio import QuartTrio

from runlater.actors.notifier import Notifier
from runlater.clock import ManualClock
from runlater.delivery.client import Sender
from runlater.delivery.transport import TrioTransport
from runlater.store.postgres import Store
from tests.helpers.api import Api, assert_error, make_app
from tests.helpers.sink import serve_sink


async def make_channel(api: Api, **fields: Any) -> dict[str, Any]:
    reply = await api.post("/notification-channels", json=fields)
    assert reply.status == 201, reply.body
    data: dict[str, Any] = reply.body["data"]
    return data


async def test_an_email_channel_defaults_to_the_owners_and_every_event(api: Api) -> None:
    data = await make_channel(api, name="owners", type="email")
    assert data["target"] == "owners" and data["enabled"] is True
    assert data["events"] == [
        "task.failed",
        "task.recovered",
        "monitor.down",
        "monitor.up",
        "endpoint.failed",
        "endpoint.recovered",
        "usage.warning",
        "usage.exhausted",
    ]
    assert (data["sent"], data["failed"]) == (0, 0)
    listed = (await api.get("/notification-channels")).body["data"]
    assert [c["id"] for c in listed] == [data["id"]]


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"type": "slack", "target": "https://hooks.example.com/x"}, {"name"}),
        ({"name": "x", "target": "https://hooks.example.com/x"}, {"type"}),
        ({"name": "x", "type": "pager", "target": "https://x.example.com"}, {"type"}),
        ({"name": "x", "type": "slack"}, {"target"}),
        ({"name": "x", "type": "slack", "target": "hooks.slack.com"}, {"target"}),
        ({"name": "x", "type": "email", "target": "not an address"}, {"target"}),
        ({"name": "x", "type": "email", "events": []}, {"events"}),
        ({"name": "x", "type": "email", "events": ["task.exploded"]}, {"events"}),
        ({"name": "x", "type": "email", "events": ["task.failed", "task.failed"]}, {"events"}),
        ({"name": "x", "type": "email", "url": "https://x"}, {"url"}),
    ],
)
async def test_invalid_channels_are_refused(
    api: Api, body: dict[str, Any], fields: set[str]
) -> None:
    assert_error(
        await api.post("/notification-channels", json=body), 422, "validation_error", fields
    )


async def test_a_channel_url_passes_the_ssrf_guard(store: Store, clock: ManualClock) -> None:
    from tests.helpers.factories import make_org

    strict = make_app(store, clock, allow_private=False)
    _, key = await make_org(store, "Strict")
    api = Api(strict, key)
    for target in ("http://127.0.0.1:9000/hook", "http://169.254.169.254/latest"):
        reply = await api.post(
            "/notification-channels", json={"name": "x", "type": "webhook", "target": target}
        )
        assert_error(reply, 422, "url_not_allowed", {"target"})


async def test_a_channel_is_changed_and_deleted(api: Api) -> None:
    data = await make_channel(api, name="chat", type="slack", target="https://hooks.example.com/a")
    reply = await api.patch(
        f"/notification-channels/{data['id']}", json={"events": ["monitor.down"], "enabled": False}
    )
    assert reply.status == 200, reply.body
    assert reply.body["data"]["events"] == ["monitor.down"]
    assert reply.body["data"]["enabled"] is False
    # A new type needs its own target.
    reply = await api.patch(f"/notification-channels/{data['id']}", json={"type": "discord"})
    assert_error(reply, 422, "validation_error", {"target"})
    reply = await api.patch(f"/notification-channels/{data['id']}", json={"type": "email"})
    assert reply.body["data"]["target"] == "owners"
    assert (await api.delete(f"/notification-channels/{data['id']}")).status == 204
    assert (await api.get(f"/notification-channels/{data['id']}")).status == 404


async def test_send_test_reaches_the_channel(api: Api, store: Store, clock: ManualClock) -> None:
    async with serve_sink() as sink, TrioTransport(allow_private=True) as http:
        data = await make_channel(api, name="hook", type="webhook", target=f"{sink.url}/hook")
        reply = await api.post(f"/notification-channels/{data['id']}/test")
        assert reply.status == 202, reply.body
        assert reply.body["data"] == {"channel_id": data["id"], "status": "pending"}
        notifier = Notifier(store, Sender(http), clock, base_url="http://x", mail_domain="x")
        assert (await notifier.run_once()).sent == 1
        [request] = await sink.wait_for(1)
        assert json.loads(request.body)["type"] == "channel.test"
        log = (await api.get(f"/notifications?channel_id={data['id']}")).body
        assert [(n["event"], n["status"]) for n in log["data"]] == [("channel.test", "sent")]
        assert (await api.get("/notification-channels")).body["data"][0]["sent"] == 1


async def test_an_email_channels_test_goes_to_the_mail_outbox(api: Api) -> None:
    data = await make_channel(api, name="me", type="email", target="me@example.com")
    reply = await api.post(f"/notification-channels/{data['id']}/test")
    assert reply.body["data"]["status"] == "sent"


async def test_maintenance_windows_one_off_and_recurring(api: Api, clock: ManualClock) -> None:
    until = (clock.now() + timedelta(hours=2)).isoformat()
    reply = await api.post("/maintenance-windows", json={"ends_at": until, "reason": "upgrade"})
    assert reply.status == 201, reply.body
    one_off = reply.body["data"]
    assert one_off["resource_type"] is None and one_off["reason"] == "upgrade"
    assert one_off["starts_at"] is not None
    monitor = (await api.post("/monitors", json={"name": "backup", "interval_seconds": 3600})).body[
        "data"
    ]
    reply = await api.post(
        "/maintenance-windows",
        json={
            "resource_type": "monitor",
            "resource_id": monitor["id"],
            "cron": "0 2 * * 0",
            "timezone": "Europe/Berlin",
            "duration_minutes": 60,
        },
    )
    assert reply.status == 201, reply.body
    listed = (await api.get("/maintenance-windows")).body["data"]
    assert len(listed) == 2
    assert (await api.delete(f"/maintenance-windows/{one_off['id']}")).status == 204
    assert len((await api.get("/maintenance-windows")).body["data"]) == 1


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, {"ends_at"}),
        ({"ends_at": "2001-01-01T00:00:00Z"}, {"ends_at"}),
        ({"cron": "0 2 * * *"}, {"duration_minutes"}),
        ({"cron": "0 99 * * *", "duration_minutes": 5}, {"cron"}),
        ({"cron": "0 2 * * *", "duration_minutes": 5, "timezone": "Mars/Base"}, {"timezone"}),
        ({"resource_type": "monitor", "ends_at": "2099-01-01T00:00:00Z"}, {"resource_id"}),
        ({"until": "2099-01-01T00:00:00Z"}, {"until"}),
    ],
)
async def test_invalid_windows_are_refused(
    api: Api, body: dict[str, Any], fields: set[str]
) -> None:
    assert_error(await api.post("/maintenance-windows", json=body), 422, "validation_error", fields)


async def test_another_organizations_channels_and_windows_are_not_found(
    api: Api, other: Api, app: QuartTrio
) -> None:
    data = await make_channel(api, name="mine", type="email")
    for reply in (
        await other.get(f"/notification-channels/{data['id']}"),
        await other.patch(f"/notification-channels/{data['id']}", json={"name": "x"}),
        await other.post(f"/notification-channels/{data['id']}/test"),
        await other.delete(f"/notification-channels/{data['id']}"),
    ):
        assert_error(reply, 404, "not_found")
    monitor = (await api.post("/monitors", json={"name": "backup", "interval_seconds": 3600})).body[
        "data"
    ]
    reply = await other.post(
        "/maintenance-windows",
        json={
            "resource_type": "monitor",
            "resource_id": monitor["id"],
            "ends_at": "2099-01-01T00:00:00Z",
        },
    )
    assert_error(reply, 404, "not_found")
    assert (await other.get("/notification-channels")).body["data"] == []
    assert (await other.get("/notifications")).body["data"] == []
