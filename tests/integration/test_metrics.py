"""``GET /metrics`` on a real node: Prometheus text that the official parser reads, and counters
that move when tasks run."""

from __future__ import annotations

import httpx
import trio
from prometheus_client.parser import text_string_to_metric_families

from runlater.config import Settings
from runlater.node import run_node
from tests.helpers.factories import make_org
from tests.helpers.sink import serve_sink

SETTINGS = Settings(
    host="127.0.0.1",
    port=0,
    allow_private_targets=True,
    rate_limit_per_ip=0,
    rate_limit_per_key=0,
    leader_renew_s=0.2,
    leader_lease_s=2,
)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


async def scrape(http: httpx.AsyncClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    reply = await http.get("/metrics")
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/plain")
    return samples(reply.text)


async def test_metrics_parse_and_move_when_tasks_run(aio_loop: object, database_url: str) -> None:
    async with serve_sink() as sink, trio.open_nursery() as nursery:
        node = await nursery.start(run_node, SETTINGS, database_url)
        _, key = await make_org(node.store)
        async with httpx.AsyncClient(base_url=node.web.bound[0]) as http:
            before = await scrape(http)
            auth = {"Authorization": f"Bearer {key}"}
            ok = await http.post("/api/v1/tasks", json={"url": sink.url + "/ok"}, headers=auth)
            bad = await http.post(
                "/api/v1/tasks",
                json={"url": sink.url + "/status/500", "retry_attempts": 0, "delay": 0},
                headers=auth,
            )
            assert (ok.status_code, bad.status_code) == (202, 202)
            later = await http.post(
                "/api/v1/tasks", json={"url": sink.url + "/x", "delay": "1h"}, headers=auth
            )
            assert later.status_code == 202
            with trio.fail_after(20):
                for reply in (ok, bad):
                    path = f"/api/v1/executions/{reply.json()['data']['execution_id']}"
                    while (await http.get(path, headers=auth)).json()["data"]["status"] in (
                        "pending",
                        "running",
                    ):
                        await trio.sleep(0.05)
                while not node.elector.is_leader:
                    await trio.sleep(0.05)
            after = await scrape(http)
        nursery.cancel_scope.cancel()

    def moved(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert moved("runlater_executions_total", outcome="success") == 1
    assert moved("runlater_executions_total", outcome="failed") == 1
    assert moved("runlater_delivery_duration_seconds_count") == 2
    assert moved("runlater_scheduling_lateness_seconds_count") == 2
    route = (("method", "POST"), ("route", "/api/v1/tasks"), ("status", "202"))
    assert (
        after[("runlater_api_requests_total", route)]
        - before.get(("runlater_api_requests_total", route), 0)
        == 3
    )
    assert after[("runlater_queue_depth", (("status", "pending"),))] >= 1  # the one due in 1 h
    assert after[("runlater_leader", ())] == 1
    assert after[("runlater_db_pool_size", ())] == SETTINGS.db_pool_size
    assert ("runlater_db_pool_in_use", ()) in after
