"""Process-level faults: SIGKILL with deliveries in flight, Postgres down under load, and the
restart budget ending the node. Each states the invariant it guards."""

from __future__ import annotations

import os
import threading
import time

import httpx
import pytest

from runlater.store.embedded import create_throwaway_cluster
from tests.helpers.process import (
    Serve,
    SinkProcess,
    api,
    base_env,
    bootstrap,
    sql,
    wait_until,
)

pytestmark = pytest.mark.slow


def test_sigkilled_node_loses_nothing(database_url: str) -> None:
    """Node A is SIGKILLed while 20 deliveries are in flight; after their leases expire node B
    delivers every one (lost = 0). Without lease rescue they would stay 'running' forever."""
    env = base_env(
        RUNLATER_DATABASE_URL=database_url,
        RUNLATER_LEASE_MARGIN_S="1",
        RUNLATER_RESCUE_INTERVAL_S="0.5",
        RUNLATER_MAX_WORKERS="30",
    )
    sink = SinkProcess()
    node_a = Serve(env).start()
    node_b = Serve(env)
    try:
        key = bootstrap(env)
        ids = []
        for i in range(20):
            response = api(
                node_a,
                key,
                "POST",
                "/tasks",
                json={"url": f"{sink.url}/gate/{i}", "timeout_ms": 4000, "retry_attempts": 0},
            )
            assert response.status_code == 202, response.text
            ids.append(response.json()["data"]["execution_id"])
        wait_until(lambda: sink.held() == 20, 10, "20 deliveries in flight")
        node_a.kill()
        running = sql(database_url, "select count(*) as n from executions where status='running'")
        assert running[0]["n"] == 20
        sink.open_gate()
        node_b.start()

        def all_done() -> bool:
            rows = sql(
                database_url, "select status from executions where id = any($1::uuid[])", ids
            )
            return all(r["status"] == "success" for r in rows)

        wait_until(all_done, 30, "node B to deliver every rescued execution", 0.25)
        rescued = sql(
            database_url,
            "select min(rescue_count) as lo from executions where id = any($1::uuid[])",
            ids,
        )
        assert rescued[0]["lo"] == 1
        delivered = {r["headers"]["x-runlater-execution-id"] for r in sink.requests()}
        assert delivered == set(ids)
        webhook_ids = {r["headers"]["webhook-id"] for r in sink.requests()}
        assert webhook_ids == set(ids)  # receivers can deduplicate the rescued repeats
    finally:
        node_a.kill()
        node_b.stop()
        sink.close()


def test_postgres_down_for_10_seconds_under_load() -> None:
    """Postgres stops for 10 s while tasks are being created: the API answers 503 (never 500),
    /health/ready answers 503 (and /health, the liveness check, stays 200 while reporting it),
    the node does not die, and every accepted task is delivered."""
    cluster = create_throwaway_cluster()
    env = base_env(RUNLATER_DATABASE_URL=cluster.dsn, RUNLATER_RESTART_MAX="1000")
    sink = SinkProcess()
    node = Serve(env)
    statuses: list[int] = []
    accepted: list[str] = []
    errors: list[str] = []
    stop_load = threading.Event()
    try:
        node.start()
        key = bootstrap(env)

        def load() -> None:
            with httpx.Client(timeout=10) as client:
                while not stop_load.is_set():
                    try:
                        response = client.post(
                            node.url + "/api/v1/tasks",
                            headers={"Authorization": f"Bearer {key}"},
                            json={"url": sink.url + "/load", "retry_attempts": 0},
                        )
                    except httpx.HTTPError as exc:
                        statuses.append(-1)
                        errors.append(repr(exc))
                        continue
                    statuses.append(response.status_code)
                    if response.status_code == 202:
                        accepted.append(response.json()["data"]["execution_id"])
                    time.sleep(0.05)

        loader = threading.Thread(target=load)
        loader.start()
        time.sleep(2)
        cluster.stop()
        down_since = time.monotonic()
        health = wait_until(
            lambda: httpx.get(node.url + "/health/ready", timeout=5).status_code == 503,
            5,
            "/health/ready to report the outage",
        )
        assert health
        body = httpx.get(node.url + "/health/ready", timeout=5).json()
        assert body == {"status": "error", "database": "unreachable"}
        live = httpx.get(node.url + "/health", timeout=5)
        assert live.status_code == 200
        assert live.json() == {"status": "ok", "database": "unreachable"}
        time.sleep(max(0.0, 10 - (time.monotonic() - down_since)))
        cluster.start()
        wait_until(
            lambda: httpx.get(node.url + "/health/ready", timeout=5).status_code == 200,
            30,
            "the node to reconnect",
        )
        time.sleep(2)
        stop_load.set()
        loader.join(30)

        assert 503 in statuses, "the outage was never observed by the API"
        unhandled = [line for line in node.output().splitlines() if "Error" in line][-5:]
        assert set(statuses) <= {202, 503}, (sorted(set(statuses)), unhandled, errors)
        assert node.proc is not None and node.proc.poll() is None, "the node died"

        def all_delivered() -> bool:
            got = {r["headers"]["x-runlater-execution-id"] for r in sink.requests()}
            return set(accepted) <= got

        wait_until(all_delivered, 60, "every accepted task to be delivered", 0.5)
        assert len(accepted) > 40
    finally:
        stop_load.set()
        node.stop()
        sink.close()
        cluster.destroy()


def test_restart_budget_exhausted_exits_non_zero(database_url: str) -> None:
    """An actor that crashes on every start (its table vanished: a non-transient error) is
    restarted with backoff, each crash logged with its name; the 6th crash within 30 s stops
    the node with a non-zero exit code."""
    env = base_env(RUNLATER_DATABASE_URL=database_url)
    node = Serve(env).start()
    try:
        sql(database_url, "drop table leader_leases")
        assert node.proc is not None
        code = node.proc.wait(60)
        assert code == 1
        output = node.output()
        assert output.count("actor crashed supervisor=root actor=elector") == 6
        assert "node stopped: actor 'elector' crashed 6 times" in output
    finally:
        node.stop()


def test_environment_does_not_leak_between_nodes() -> None:
    """Guard for the helpers above: base_env never inherits RUNLATER_* from the caller."""
    os.environ["RUNLATER_PORT"] = "1"
    try:
        assert "RUNLATER_PORT" not in base_env()
    finally:
        del os.environ["RUNLATER_PORT"]
