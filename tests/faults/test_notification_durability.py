"""A node SIGKILLed between a notification's event and its send: after a restart the
notification is sent exactly once.

A monitor's failure ping writes its event in the ping's own statement. Node A's Notifier
cannot turn the event into notifications while this test holds a SHARE lock on the
notifications table (its insert waits, times out and is rolled back with the event left
pending); node A is killed meanwhile. Node B, started after the lock is gone, sends the
notification — once: the event is marked done in the transaction that wrote it. Without the
event outbox the failure would be lost with node A; without the one transaction it could be
sent twice.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager

import asyncpg
import httpx
import pytest

from tests.helpers.process import Serve, SinkProcess, api, base_env, bootstrap, sql, wait_until

pytestmark = pytest.mark.slow


@contextmanager
def notifications_locked(dsn: str) -> Iterator[None]:
    """Hold ``LOCK notifications IN SHARE MODE`` in a session of its own while inside."""
    loop = asyncio.new_event_loop()
    conn = loop.run_until_complete(asyncpg.connect(dsn))
    try:
        loop.run_until_complete(conn.execute("begin; lock table notifications in share mode"))
        yield
    finally:
        loop.run_until_complete(conn.execute("rollback"))
        loop.run_until_complete(conn.close())
        loop.close()


def test_a_node_killed_between_event_and_send_sends_once_after_restart(database_url: str) -> None:
    env = base_env(RUNLATER_DATABASE_URL=database_url, RUNLATER_DB_LOCK_TIMEOUT_MS="200")
    sink = SinkProcess()
    node_a = Serve(env)
    node_b: Serve | None = None
    try:
        node_a.start()
        key = bootstrap(env)
        channel = api(
            node_a,
            key,
            "POST",
            "/notification-channels",
            json={"name": "ops", "type": "slack", "target": f"{sink.url}/slack"},
        )
        assert channel.status_code == 201, channel.text
        monitor = api(
            node_a, key, "POST", "/monitors", json={"name": "backup", "interval_seconds": 3600}
        ).json()["data"]
        with notifications_locked(database_url):
            ping = httpx.post(f"{monitor['ping_url']}/fail", timeout=10)
            assert ping.status_code == 200
            [event] = sql(database_url, "select * from notification_events")
            assert event["event"] == "monitor.down" and event["processed_at"] is None
            # Node A's Notifier tries (and is turned back by the lock) at least once.
            wait_until(lambda: "actor=notifier pass failed" in node_a.output(), 20, "a try")
            node_a.kill()
        assert sql(database_url, "select count(*) as n from notifications")[0]["n"] == 0
        assert sink.requests() == []
        node_b = Serve(env).start()
        wait_until(lambda: len(sink.requests()) >= 1, 30, "the notification to be sent")
        time.sleep(2)  # anything more would arrive now
        [received] = sink.requests()
        assert "*Monitor down: backup*" in json.loads(received["body"])["text"]
        [row] = sql(database_url, "select * from notifications")
        assert (row["status"], row["attempts"]) == ("sent", 1)
        [event] = sql(database_url, "select * from notification_events")
        assert event["processed_at"] is not None
    finally:
        node_a.kill()
        if node_b is not None:
            node_b.stop()
        sink.close()
