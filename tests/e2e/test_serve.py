"""The real ``runlater serve`` process: embedded Postgres, the delayed-task path, two nodes."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from datetime import datetime
from pathlib import Path

import pytest

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


def _postmaster_running(data_dir: Path) -> bool:
    pid_file = data_dir / "pg" / "postmaster.pid"
    if not pid_file.exists():
        return False
    pid = int(pid_file.read_text().split()[0])
    return Path(f"/proc/{pid}").exists()


def test_fresh_data_dir_serves_on_embedded_postgres_and_runs_a_delayed_task() -> None:
    """No database URL: serve starts its own Postgres; a "3s" task arrives 3 s (±1 s) later,
    its execution shows success, status code and duration; data survives a restart; the
    embedded Postgres stops with the node."""
    data_dir = Path(tempfile.mkdtemp(prefix="runlater-e2e-"))
    os.chmod(data_dir, 0o755)  # the postgres OS user must reach <dir>/pg when we are root
    env = base_env(RUNLATER_DATA_DIR=str(data_dir))
    sink = SinkProcess()
    node = Serve(env)
    try:
        node.start(ready_timeout_s=90)
        key = bootstrap(env)
        assert key.startswith("pk_live_")
        created_at = time.time()
        response = api(
            node,
            key,
            "POST",
            "/tasks",
            json={"url": sink.url + "/hello", "delay": "3s", "body": {"hi": 1}},
        )
        assert response.status_code == 202, response.text
        data = response.json()["data"]
        arrived = wait_until(sink.requests, 15, "the delayed delivery")
        lateness = arrived[0]["at"] - created_at
        assert 2.0 <= lateness <= 4.0, lateness
        assert arrived[0]["body"] == '{"hi":1}'

        def finished() -> dict | None:
            got = api(node, key, "GET", f"/executions/{data['execution_id']}").json()["data"]
            return got if got["status"] == "success" else None

        execution = wait_until(finished, 10, "the execution to be recorded")
        assert execution["status_code"] == 200
        assert isinstance(execution["duration_ms"], int) and execution["duration_ms"] >= 0
        scheduled = datetime.fromisoformat(data["scheduled_for"]).timestamp()
        assert abs(scheduled - (created_at + 3)) < 1.0

        assert node.stop() == 0
        assert not _postmaster_running(data_dir), "embedded Postgres outlived the node"
        node = Serve(env).start(ready_timeout_s=60)
        again = api(node, key, "GET", f"/tasks/{data['task_id']}")
        assert again.status_code == 200 and again.json()["data"]["url"] == sink.url + "/hello"
    finally:
        node.stop()
        sink.close()
        shutil.rmtree(data_dir, ignore_errors=True)


def test_two_nodes_on_one_database_fire_a_minute_cron_once(database_url: str) -> None:
    """Two nodes, one database, ``* * * * *``: exactly one execution (and one delivery) for
    the minute, whichever node is leader."""
    env = base_env(RUNLATER_DATABASE_URL=database_url)
    sink = SinkProcess()
    nodes = [Serve(env), Serve(env)]
    try:
        for node in nodes:
            node.start()
        key = bootstrap(env)
        created = api(
            nodes[1],
            key,
            "POST",
            "/tasks",
            json={"url": sink.url + "/tick", "cron": "* * * * *", "name": "tick"},
        )
        assert created.status_code == 201, created.text
        task_id = created.json()["data"]["id"]
        first_run = datetime.fromisoformat(created.json()["data"]["next_run_at"]).timestamp()
        wait_until(lambda: time.time() > first_run + 6, 75, "the minute to pass", 0.5)
        rows = sql(
            database_url,
            "select scheduled_for, status from executions "
            "where task_id = $1 order by scheduled_for",
            task_id,
        )
        assert len(rows) == 1, rows
        assert rows[0]["scheduled_for"].timestamp() == first_run
        assert rows[0]["status"] == "success"
        assert [r["path"] for r in sink.requests()] == ["/tick"]
        leaders = sql(database_url, "select holder from leader_leases")
        assert len(leaders) == 1
    finally:
        for node in nodes:
            node.stop()
        sink.close()
