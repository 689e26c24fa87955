"""``/in/{slug}`` on real nodes: the answer never waits for a forward, and an event answered
200 is forwarded even when the node is SIGKILLed right after.

The forward target holds every request at its gate (it never answers until the test opens it).
Node A answers ``/in`` while its forward of the first event hangs there (causality: the target
has the forward, unanswered, when the 200 arrives); a second event is answered while the first
forward still hangs. Node A is then killed with SIGKILL. Node B, started on the same database,
finds both events stored and both forwards' leases expired (the forward's 30 s timeout), and
sends them again; once the gate opens they succeed.
"""

from __future__ import annotations

import httpx
import pytest

from tests.helpers.process import Serve, SinkProcess, api, base_env, bootstrap, sql, wait_until

pytestmark = pytest.mark.slow


def test_in_answers_at_once_and_a_killed_node_loses_no_forward(database_url: str) -> None:
    env = base_env(
        RUNLATER_DATABASE_URL=database_url,
        RUNLATER_LEASE_MARGIN_S="0.5",
        RUNLATER_RESCUE_INTERVAL_S="0.5",
    )
    sink = SinkProcess()
    node_a = Serve(env)
    node_b: Serve | None = None
    try:
        node_a.start()
        key = bootstrap(env)
        made = api(
            node_a,
            key,
            "POST",
            "/endpoints",
            json={"name": "hooks", "forward_urls": [f"{sink.url}/gate/forward"]},
        )
        assert made.status_code == 201, made.text
        slug = made.json()["data"]["slug"]

        first = httpx.post(f"{node_a.url}/in/{slug}", content=b'{"n":1}', timeout=10)
        assert first.status_code == 200, first.text
        wait_until(lambda: sink.held() == 1, 30, "the first forward to reach the target")
        # The target has the forward and has not answered it; /in answers regardless.
        second = httpx.post(f"{node_a.url}/in/{slug}", content=b'{"n":2}', timeout=10)
        assert second.status_code == 200, second.text
        wait_until(lambda: sink.held() == 2, 30, "the second forward to reach the target")
        assert sink.requests() == []  # nothing answered yet

        node_a.kill()
        ids = {first.json()["id"], second.json()["id"]}
        stored = sql(database_url, "select id::text as id, status from inbound_events")
        assert {r["id"] for r in stored} == ids and {r["status"] for r in stored} == {"received"}

        node_b = Serve(env).start()
        # Node B takes both forwards over once node A's leases expire.
        wait_until(lambda: sink.held() >= 4, 120, "node B to send both forwards again")
        sink.open_gate()

        def both_delivered() -> bool:
            found = sql(
                database_url,
                "select e.status from executions e join tasks t on t.id = e.task_id"
                " where t.inbound_event_id is not null and e.status = 'success'",
            )
            return len(found) == 2

        wait_until(both_delivered, 30, "both forwards to succeed")
        bodies = sorted({r["body"] for r in sink.requests()})
        assert bodies == ['{"n":1}', '{"n":2}']
    finally:
        node_a.kill()
        if node_b is not None:
            node_b.stop()
        sink.close()
