"""The Notifier against the real database and real local HTTP servers, driven by ``run_once()``
and a manual clock: events written by real causes (a monitor's pings and the Monitor's tick,
executions finishing, usage), each channel type's payload as received, the webhook's signature
checked with ``standardwebhooks``, e-mail through the mail outbox, the consecutive-failure
threshold, the hourly throttle and its summary, maintenance windows, recovery only after a
notified failure, usage alerts once a month."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from standardwebhooks import Webhook

from runlater.actors.mailer import Mailer
from runlater.actors.monitor import Monitor
from runlater.actors.notifier import Notifier
from runlater.actors.worker import Worker
from runlater.clock import ManualClock
from runlater.delivery.client import Deliverer, Sender
from runlater.delivery.transport import TrioTransport
from runlater.domain.monitors import draft_monitor
from runlater.store.monitors import Ping
from runlater.store.postgres import Store
from tests.helpers.db import raw_connection, sql
from tests.helpers.factories import make_org, once_task
from tests.helpers.sink import Sink, serve_sink
from tests.helpers.smtp import smtp_server

BASE = "http://runlater.test"
SENDER = "Runlater <runlater@runlater.test>"
START = datetime(2026, 6, 1, 10, 5, tzinfo=UTC)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    async with serve_sink() as server:
        yield server


@pytest.fixture
async def notifier(store: Store, clock: ManualClock) -> AsyncIterator[Notifier]:
    async with TrioTransport(allow_private=True) as http:
        yield Notifier(store, Sender(http), clock, base_url=BASE, mail_domain="runlater.test")


@pytest.fixture
async def org(store: Store) -> UUID:
    org_id, _ = await make_org(store, "Acme")
    return org_id


async def monitor(store: Store, org: UUID, clock: ManualClock, **fields: Any) -> dict[str, Any]:
    fields.setdefault("name", "backup")
    fields.setdefault("interval_seconds", 3600)
    return await store.insert_monitor(org, draft_monitor(fields, clock.now()))


async def ping(store: Store, row: dict[str, Any], kind: str, clock: ManualClock) -> None:
    found = await store.ping_monitor(
        Ping(row["ping_token"], kind, None, None, clock.now(), "POST", None, None, b"", False)
    )
    assert found is not None


async def channel(store: Store, org: UUID, kind: str, target: str, **extra: Any) -> UUID:
    fields = {"name": f"{kind} channel", "type": kind, "target": target, "enabled": True}
    fields["events"] = extra.pop(
        "events",
        [
            "monitor.down",
            "monitor.up",
            "task.failed",
            "task.recovered",
            "usage.warning",
            "usage.exhausted",
        ],
    )
    return (await store.insert_channel(org, fields))["id"]


async def notifications(store: Store, org: UUID) -> list[dict[str, Any]]:
    rows = await store.list_notifications(org, limit=100, offset=0)
    return list(reversed(rows))  # oldest first


async def mails(database_url: str, org: UUID) -> list[dict[str, Any]]:
    async with raw_connection(database_url) as conn:
        return await sql(
            conn,
            "select to_address, subject, text_body from mails where organization_id = $1"
            " order by inserted_at, id",
            org,
        )


async def test_without_channels_the_owners_get_an_email(
    store: Store, org: UUID, clock: ManualClock, notifier: Notifier, database_url: str
) -> None:
    row = await monitor(store, org, clock)
    await ping(store, row, "fail", clock)
    result = await notifier.run_once()
    assert result.expanded == 1
    [sent] = await notifications(store, org)
    assert (sent["event"], sent["channel_type"], sent["status"]) == (
        "monitor.down",
        "email",
        "sent",
    )
    [mail] = await mails(database_url, org)
    assert mail["to_address"] == "owner@acme.test"
    assert mail["subject"] == "[Acme] Monitor down: backup"
    assert "the job reported a failure" in mail["text_body"]
    assert f"{BASE}/monitors/{row['id']}" in mail["text_body"]
    assert (await notifier.run_once()).expanded == 0  # an event becomes notifications once


async def test_each_chat_type_gets_its_own_format_and_the_webhook_verifies(
    store: Store, org: UUID, clock: ManualClock, notifier: Notifier, sink: Sink
) -> None:
    for kind in ("slack", "discord", "teams", "webhook"):
        await channel(store, org, kind, f"{sink.url}/{kind}")
    row = await monitor(store, org, clock)
    await ping(store, row, "fail", clock)
    result = await notifier.run_once()
    assert result.sent == 4
    received = {r.path.strip("/"): r for r in await sink.wait_for(4)}
    slack = json.loads(received["slack"].body)
    assert set(slack) == {"text"} and "*Monitor down: backup*" in slack["text"]
    assert f"<{BASE}/monitors/{row['id']}|Open in Runlater>" in slack["text"]
    discord = json.loads(received["discord"].body)
    assert set(discord) == {"content"} and "**Monitor down: backup**" in discord["content"]
    teams = json.loads(received["teams"].body)
    assert teams["@type"] == "MessageCard" and teams["title"] == "Monitor down: backup"
    assert teams["potentialAction"][0]["targets"][0]["uri"].endswith(str(row["id"]))
    hook = received["webhook"]
    secret = (await store.get_organization_usage(org))["webhook_secret"]
    verified = Webhook(secret).verify(hook.body, hook.headers)
    assert verified["type"] == "monitor.down"
    assert verified["resource"] == {"type": "monitor", "id": str(row["id"]), "name": "backup"}
    assert hook.headers["x-runlater-event"] == "monitor.down"
    tampered = hook.body.replace(b"backup", b"restore")
    with pytest.raises(Exception, match=r"(?i)signature"):
        Webhook(secret).verify(tampered, hook.headers)
    statuses = {n["channel_type"]: n["status"] for n in await notifications(store, org)}
    assert statuses == {"slack": "sent", "discord": "sent", "teams": "sent", "webhook": "sent"}


async def test_a_failing_channel_is_retried_then_failed(
    store: Store, org: UUID, clock: ManualClock, notifier: Notifier, sink: Sink
) -> None:
    await channel(store, org, "slack", f"{sink.url}/status/500")
    row = await monitor(store, org, clock)
    await ping(store, row, "fail", clock)
    await notifier.run_once()
    [first] = await notifications(store, org)
    assert first["status"] == "pending" and first["attempts"] == 1 and "500" in first["reason"]
    for _ in range(4):
        clock.advance(3600)
        await notifier.run_once()
    [last] = await notifications(store, org)
    assert last["status"] == "failed" and last["attempts"] == 5
    assert len(sink.requests) == 5


async def test_alert_after_counts_consecutive_failures(
    store: Store, org: UUID, clock: ManualClock, notifier: Notifier, sink: Sink
) -> None:
    await channel(store, org, "slack", f"{sink.url}/slack")
    row = await monitor(store, org, clock, alert_after=3)
    for _ in range(2):
        await ping(store, row, "fail", clock)
    await notifier.run_once()
    assert await notifications(store, org) == []
    await ping(store, row, "fail", clock)
    await ping(store, row, "fail", clock)  # a fourth: the same streak, no second alert
    await notifier.run_once()
    assert [n["event"] for n in await notifications(store, org)] == ["monitor.down"]
    await ping(store, row, "success", clock)
    await notifier.run_once()
    assert [n["event"] for n in await notifications(store, org)] == ["monitor.down", "monitor.up"]


async def test_recovery_only_after_a_notified_failure(
    store: Store, org: UUID, clock: ManualClock, notifier: Notifier, sink: Sink
) -> None:
    await channel(store, org, "slack", f"{sink.url}/slack")
    row = await monitor(store, org, clock, alert_after=2)
    await ping(store, row, "success", clock)  # new → up: nothing to tell
    await ping(store, row, "fail", clock)  # one failure, below alert_after
    await ping(store, row, "success", clock)  # back up: no failure was told, no recovery
    await notifier.run_once()
    assert await notifications(store, org) == []


async def test_the_monitors_tick_writes_the_down_event(
    store: Store, org: UUID, clock: ManualClock, notifier: Notifier, sink: Sink
) -> None:
    await channel(store, org, "discord", f"{sink.url}/discord")
    row = await monitor(store, org, clock, interval_seconds=60, grace_period_seconds=0)
    await ping(store, row, "success", clock)
    tick = await Monitor(store, clock, interval_s=5).run_once(clock.now() + timedelta(seconds=60))
    assert tick.marked == [row["id"]]
    await notifier.run_once()
    [request] = await sink.wait_for(1)
    assert "no ping arrived by" in json.loads(request.body)["content"]


async def test_three_failure_mails_an_hour_then_one_summary(
    store: Store, org: UUID, clock: ManualClock, notifier: Notifier, database_url: str
) -> None:
    rows = [await monitor(store, org, clock, name=f"job {i}") for i in range(6)]
    for row in rows:
        await ping(store, row, "fail", clock)
    await notifier.run_once()
    found = await notifications(store, org)
    assert [n["status"] for n in found if n["event"] == "monitor.down"] == (
        ["sent"] * 3 + ["suppressed"] * 3
    )
    assert all(n["reason"].startswith("throttled:") for n in found if n["status"] == "suppressed")
    [summary] = [n for n in found if n["event"] == "summary"]
    assert summary["status"] == "pending"
    assert len(await mails(database_url, org)) == 3
    # Later in the same hour: one more failure, throttled too; still one summary.
    clock.advance(600)
    extra = await monitor(store, org, clock, name="job 6")
    await ping(store, extra, "fail", clock)
    await notifier.run_once()
    assert len([n for n in await notifications(store, org) if n["event"] == "summary"]) == 1
    assert len(await mails(database_url, org)) == 3
    # The hour ends: the summary lists the four held back.
    clock.set(START.replace(minute=0) + timedelta(hours=1, seconds=1))
    await notifier.run_once()
    sent = await mails(database_url, org)
    assert len(sent) == 4
    assert sent[-1]["subject"] == "[Acme] Several things are failing in Acme"
    for name in ("job 3", "job 4", "job 5", "job 6"):
        assert f"Monitor down: {name}" in sent[-1]["text_body"]
    assert "job 0" not in sent[-1]["text_body"]
    # A new hour: failure mails go out again.
    await ping(store, rows[0], "success", clock)
    await ping(store, rows[0], "fail", clock)
    await notifier.run_once()
    assert len(await mails(database_url, org)) == 6  # the recovery and the new failure


async def test_a_maintenance_window_suppresses_and_records(
    store: Store, org: UUID, clock: ManualClock, notifier: Notifier, sink: Sink
) -> None:
    await channel(store, org, "slack", f"{sink.url}/slack")
    muted = await monitor(store, org, clock, name="muted")
    loud = await monitor(store, org, clock, name="loud")
    await store.insert_window(
        org,
        {
            "resource_type": "monitor",
            "resource_id": muted["id"],
            "starts_at": None,
            "ends_at": clock.now() + timedelta(hours=1),
            "cron": None,
            "timezone": "UTC",
            "duration_minutes": None,
            "reason": "database upgrade",
        },
    )
    await ping(store, muted, "fail", clock)
    await ping(store, loud, "fail", clock)
    await notifier.run_once()
    by_resource = {n["resource_id"]: n for n in await notifications(store, org)}
    assert by_resource[muted["id"]]["status"] == "suppressed"
    assert "maintenance window: database upgrade" in by_resource[muted["id"]]["reason"]
    assert by_resource[loud["id"]]["status"] == "sent"
    assert len(sink.requests) == 1


async def test_a_recurring_window_mutes_the_organization_while_open(
    store: Store, org: UUID, clock: ManualClock, notifier: Notifier, sink: Sink
) -> None:
    await channel(store, org, "slack", f"{sink.url}/slack")
    # Every day 10:00-10:30 UTC; START is 10:05.
    await store.insert_window(
        org,
        {
            "resource_type": None,
            "resource_id": None,
            "starts_at": None,
            "ends_at": None,
            "cron": "0 10 * * *",
            "timezone": "UTC",
            "duration_minutes": 30,
            "reason": "nightly deploy",
        },
    )
    row = await monitor(store, org, clock)
    await ping(store, row, "fail", clock)
    await notifier.run_once()
    [muted] = await notifications(store, org)
    assert muted["status"] == "suppressed" and "recurring" in muted["reason"]
    clock.advance(1800)  # 10:35: the window is closed
    await ping(store, row, "success", clock)
    await notifier.run_once()
    assert [n["status"] for n in await notifications(store, org)] == ["suppressed", "sent"]


async def test_turned_off_notifications_are_recorded_as_suppressed(
    store: Store, org: UUID, clock: ManualClock, notifier: Notifier, sink: Sink
) -> None:
    await channel(store, org, "slack", f"{sink.url}/slack")
    row = await monitor(store, org, clock, notify_on_failure=False)
    await ping(store, row, "fail", clock)
    await notifier.run_once()
    [off] = await notifications(store, org)
    assert off["status"] == "suppressed"
    assert off["reason"] == "notifications are turned off for this monitor"
    assert sink.requests == []


async def test_an_extra_url_gets_the_signed_webhook_too(
    store: Store, org: UUID, clock: ManualClock, notifier: Notifier, sink: Sink
) -> None:
    await channel(store, org, "slack", f"{sink.url}/slack")
    row = await monitor(store, org, clock, on_failure_url=f"{sink.url}/pager")
    await ping(store, row, "fail", clock)
    await notifier.run_once()
    paths = sorted(r.path for r in await sink.wait_for(2))
    assert paths == ["/pager", "/slack"]


async def test_a_tasks_final_failure_and_recovery(
    store: Store, org: UUID, clock: ManualClock, notifier: Notifier, sink: Sink
) -> None:
    await channel(
        store, org, "slack", f"{sink.url}/slack", events=["task.failed", "task.recovered"]
    )
    async with TrioTransport(allow_private=True) as http:
        worker = Worker(store, Deliverer(http), node="t", lease_margin_s=60)
        # A one-time task with a retry: the first failure is not final, the second is.
        task = await store.insert_task(
            org, once_task(f"{sink.url}/status/500", name="sync", retry_attempts=1), 0
        )
        await worker.run_once(10)
        await notifier.run_once()
        assert await notifications(store, org) == []
        async with raw_connection(store.dsn) as conn:
            await sql(conn, "update executions set scheduled_for = now() where status = 'pending'")
        await worker.run_once(10)
        await notifier.run_once()
        [failed] = await notifications(store, org)
        assert failed["event"] == "task.failed" and failed["resource_id"] == task["id"]
        assert "HTTP 500" in json.loads(sink.requests[-1].body)["text"]
        # The same task run again, successfully now: a recovery.
        async with raw_connection(store.dsn) as conn:
            await sql(conn, "update tasks set url = $1 where id = $2", f"{sink.url}/ok", task["id"])
        await store.trigger_task(org, task["id"])
        await worker.run_once(10)
        await notifier.run_once()
        assert [n["event"] for n in await notifications(store, org)] == [
            "task.failed",
            "task.recovered",
        ]


async def test_usage_alerts_come_once_per_month(
    store: Store, clock: ManualClock, notifier: Notifier, database_url: str
) -> None:
    org, _ = await make_org(store, "Smallco", tier="free")  # 10,000 executions a month
    async with raw_connection(database_url) as conn:
        await sql(
            conn,
            "insert into usage_counters (organization_id, month, shard, executions)"
            " values ($1, usage_month(now()), 0, 7998)",
            org,
        )
    await store.insert_task(org, once_task("http://127.0.0.1:9/x", name="a"), 3600)  # 7,999
    await store.insert_task(org, once_task("http://127.0.0.1:9/x", name="b"), 3600)  # 8,000
    await store.insert_task(org, once_task("http://127.0.0.1:9/x", name="c"), 3600)  # 8,001
    await notifier.run_once()
    assert [n["event"] for n in await notifications(store, org)] == ["usage.warning"]
    sent = await mails(database_url, org)
    assert len(sent) == 1 and "8,000 of 10,000" in sent[0]["text_body"]


async def test_failure_mails_reach_an_smtp_server_through_the_mailer(
    store: Store, org: UUID, clock: ManualClock, notifier: Notifier
) -> None:
    """E-mail end to end: the Notifier writes the mail into the outbox with the notification,
    the Mailer sends it to a real (aiosmtpd) SMTP server: to the owner and to an e-mail
    channel's address, both parts, with the monitor's link."""
    await channel(store, org, "email", "oncall@acme.test")
    await channel(store, org, "email", "owners")
    row = await monitor(store, org, clock)
    await ping(store, row, "fail", clock)
    await notifier.run_once()
    with smtp_server() as (inbox, port):
        sent = await Mailer(store, smtp_url=f"smtp://127.0.0.1:{port}", sender=SENDER).run_once()
        assert sent.sent == 2
    assert sorted(r[0] for r in inbox.recipients) == ["oncall@acme.test", "owner@acme.test"]
    for message in inbox.messages:
        assert message["Subject"] == "[Acme] Monitor down: backup"
        parts = {p.get_content_type(): p.get_content() for p in message.iter_parts()}
        assert set(parts) == {"text/plain", "text/html"}
        for body in parts.values():
            assert f"{BASE}/monitors/{row['id']}" in body
            assert "the job reported a failure" in body
