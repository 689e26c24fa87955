"""A Python client generated from the served spec (openapi-python-client, as users would make
one) drives the main calls against a real server, and every answer parses into its model.

The generator runs from its own virtualenv (``.cache/``, git-ignored, made on first use): its
dependencies are not Runlater's. The generated package needs only httpx and attrs.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import trio

from runlater.clock import SystemClock
from runlater.config import Settings
from runlater.web.app import create_app
from tests.contract.server import ServerThread
from tests.helpers.process import ROOT

pytestmark = pytest.mark.slow

GENERATOR = "openapi-python-client==0.29.1"
TOOL_VENV = ROOT / ".cache" / "openapi-python-client-0.29.1"


def generator() -> Path:
    exe = TOOL_VENV / "bin" / "openapi-python-client"
    if not exe.exists():
        subprocess.run([sys.executable, "-m", "venv", str(TOOL_VENV)], check=True, timeout=120)
        subprocess.run(
            [str(TOOL_VENV / "bin" / "pip"), "install", "-q", GENERATOR], check=True, timeout=600
        )
    return exe


def served_spec() -> dict[str, Any]:
    app = create_app(None, Settings(), SystemClock())  # type: ignore[arg-type]

    async def fetch() -> dict[str, Any]:
        return await (await app.test_client().get("/api/v1/openapi.json")).get_json()

    return trio.run(fetch)


@pytest.fixture(scope="module")
def client_package(tmp_path_factory: pytest.TempPathFactory) -> Any:
    out = tmp_path_factory.mktemp("generated")
    spec = out / "openapi.json"
    spec.write_text(json.dumps(served_spec()))
    done = subprocess.run(
        [
            str(generator()),
            "generate",
            "--path",
            str(spec),
            "--meta",
            "none",
            "--output-path",
            str(out / "runlater_client"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    # Only the formatter is missing from its venv; anything else is a spec the tool misread.
    warnings = [
        line
        for line in (done.stdout + done.stderr).splitlines()
        if line.strip()
        and not line.startswith(("Generating", "Warning(s) encountered"))
        and "ruff" not in line
        and "Skipping Integration" not in line
        and "If you believe this was a mistake" not in line
    ]
    assert not warnings, "\n".join(warnings)
    sys.path.insert(0, str(out))
    try:
        yield importlib.import_module("runlater_client")
    finally:
        sys.path.remove(str(out))


def test_a_generated_client_drives_the_main_calls(client_package: Any, database_url: str) -> None:
    models = importlib.import_module("runlater_client.models")
    mod = {
        name: importlib.import_module(f"runlater_client.api.{group}.{name}")
        for group, name in [
            ("tasks", "post_create_task"),
            ("tasks", "get_task"),
            ("tasks", "get_list_tasks"),
            ("tasks", "patch_update_task"),
            ("tasks", "post_trigger_task"),
            ("tasks", "get_list_executions"),
            ("tasks", "post_create_batch"),
            ("tasks", "delete_task"),
            ("executions", "get_execution"),
            ("queues", "post_pause_queue"),
            ("queues", "get_list_queues"),
            ("api_keys", "post_create_api_key"),
            ("org", "get_org"),
            ("cron", "get_preview"),
            ("sync", "put_sync"),
            ("default", "get_health"),
            ("default", "get_ready"),
        ]
    }
    settings = Settings(allow_private_targets=True, rate_limit_per_key=0, rate_limit_per_ip=0)
    target = "http://127.0.0.1:9999/hook"
    with ServerThread(database_url, settings) as server:
        client = client_package.AuthenticatedClient(base_url=server.url, token=server.key)

        queued = mod["post_create_task"].sync(
            client=client, body=models.TaskCreate(url=target, delay="1h", name="from sdk")
        )
        assert isinstance(queued, models.OnceTaskQueued), queued
        task_id = queued.data.task_id
        cron = mod["post_create_task"].sync(
            client=client, body=models.TaskCreate(url=target, cron="0 9 * * *")
        )
        assert isinstance(cron, models.CronTaskCreated) and cron.data.retry_attempts == 0

        task = mod["get_task"].sync(task_id=str(task_id), client=client)
        assert task.data.name == "from sdk"
        listed = mod["get_list_tasks"].sync(client=client, limit=10)
        assert {t.id for t in listed.data} == {task_id, cron.data.id}
        changed = mod["patch_update_task"].sync(
            task_id=str(task_id), client=client, body=models.TaskUpdate(name="renamed")
        )
        assert changed.data.name == "renamed"
        triggered = mod["post_trigger_task"].sync(task_id=str(task_id), client=client)
        execution = mod["get_execution"].sync(
            execution_id=str(triggered.data.execution_id), client=client
        )
        assert execution.data.status == "pending"
        runs = mod["get_list_executions"].sync(task_id=str(task_id), client=client)
        assert len(runs.data) == 2

        batch = mod["post_create_batch"].sync(
            client=client,
            body=models.BatchRequest.from_dict({"url": target, "queue": "q", "items": [1, 2]}),
        )
        assert [i.task_id for i in batch.data.items] and batch.data.created == 2
        paused = mod["post_pause_queue"].sync(name="later", client=client)
        assert paused.data.paused is True
        queues = mod["get_list_queues"].sync(client=client)
        assert {q.name for q in queues.data} == {"q", "later"}

        key = mod["post_create_api_key"].sync(client=client)  # no body at all
        assert key.data.key.startswith("pk_live_")
        named = mod["post_create_api_key"].sync(
            client=client, body=models.ApiKeyCreateRequest(name="deploy")
        )
        assert named.data.name == "deploy"

        org = mod["get_org"].sync(client=client)
        assert org.data.tier in ("free", "pro")
        preview = mod["get_preview"].sync(client=client, expression="*/15 * * * *", count=3)
        assert len(preview.data.next_runs) == 3
        synced = mod["put_sync"].sync(
            client=client,
            body=models.SyncRequest.from_dict(
                {"tasks": [{"name": "nightly", "url": target, "cron": "0 3 * * *"}]}
            ),
        )
        assert synced.data.tasks.created == ["nightly"]

        missing = mod["get_task"].sync(task_id=str(uuid.uuid4()), client=client)
        assert missing.error.code == "not_found"
        health = mod["get_health"].sync(client=client)
        assert health.status == "ok"
        ready = mod["get_ready"].sync(client=client)
        assert ready.database == "connected"
        assert (
            mod["delete_task"].sync_detailed(task_id=str(task_id), client=client).status_code == 204
        )
