"""Real ping clients, unchanged, against a running node: the PyPI ``healthchecks-io`` client (in
a virtualenv of its own: it pins an old httpx) pointed at the node with ``ping_url=``, and the
curl wrapper people put in crontab. The states they cause are read back over REST."""

from __future__ import annotations

import json
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.client_venv import client_venv
from tests.helpers.process import Serve, api, base_env, bootstrap

HEALTHCHECKS_CLIENT = "healthchecks-io==0.4.4"


@pytest.fixture
def node(database_url: str) -> Iterator[tuple[Serve, str]]:
    """A running node (its own process) and an API key of an organization on it."""
    env = base_env(RUNLATER_DATABASE_URL=database_url)
    serve = Serve(env)
    try:
        serve.start()
        yield serve, bootstrap(env, org="Pingers")
    finally:
        serve.stop()


def monitor(node: tuple[Serve, str], name: str) -> dict[str, Any]:
    serve, key = node
    reply = api(serve, key, "POST", "/monitors", json={"name": name, "interval_seconds": 3600})
    assert reply.status_code == 201, reply.text
    data: dict[str, Any] = reply.json()["data"]
    return data


def current(node: tuple[Serve, str], mon: dict[str, Any]) -> dict[str, Any]:
    serve, key = node
    reply = api(serve, key, "GET", f"/monitors/{mon['id']}")
    assert reply.status_code == 200, reply.text
    data: dict[str, Any] = reply.json()["data"]
    return data


def pings(node: tuple[Serve, str], mon: dict[str, Any]) -> list[dict[str, Any]]:
    serve, key = node
    data: list[dict[str, Any]] = api(serve, key, "GET", f"/monitors/{mon['id']}/pings").json()[
        "data"
    ]
    return data


CLIENT_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from healthchecks_io import Client
    ping_url, token, call, *args = sys.argv[1:]
    client = Client(ping_url=ping_url)
    if call == "exit_code_ping":
        result = client.exit_code_ping(int(args[0]), uuid=token)
    else:
        result = getattr(client, call)(uuid=token, data=args[0] if args else "")
    print(json.dumps(result))
    """
)


def test_the_healthchecks_io_client_drives_start_success_fail_and_exit_codes(
    node: tuple[Serve, str], tmp_path: Path
) -> None:
    python = client_venv("healthchecks-io", HEALTHCHECKS_CLIENT)
    script = tmp_path / "hc.py"
    script.write_text(CLIENT_SCRIPT)
    mon = monitor(node, "hc client job")
    ping_url = node[0].url + "/ping/"
    assert mon["ping_url"] == ping_url + mon["ping_token"]

    def call(method: str, *args: str) -> Any:
        done = subprocess.run(
            [str(python), str(script), ping_url, mon["ping_token"], method, *args],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    assert call("start_ping") == [True, "OK"]
    state = current(node, mon)
    assert state["status"] == "new" and state["started_at"] is not None
    assert call("success_ping", "backup: 1.2 GB") == [True, "OK"]
    state = current(node, mon)
    assert state["status"] == "up" and state["started_at"] is None
    assert state["last_duration_ms"] is not None
    assert call("fail_ping", "disk full") == [True, "OK"]
    assert current(node, mon)["status"] == "down"
    assert call("exit_code_ping", "0") == [True, "OK"]
    assert current(node, mon)["status"] == "up"
    assert call("exit_code_ping", "3") == [True, "OK"]
    assert current(node, mon)["status"] == "down"
    log = pings(node, mon)
    assert [(p["kind"], p["exit_status"]) for p in log] == [
        ("fail", 3),
        ("success", 0),
        ("fail", None),
        ("success", None),
        ("start", None),
    ]
    assert log[2]["body"] == "disk full" and log[3]["body"] == "backup: 1.2 GB"
    assert log[3]["duration_ms"] is not None
    # An unknown check: the client raises its "not found" error.
    done = subprocess.run(
        [
            str(python),
            str(script),
            ping_url,
            "00000000-0000-4000-8000-000000000000",
            "success_ping",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0 and "CheckNotFoundError" in done.stderr


WRAPPER = textwrap.dedent(
    """
    #!/bin/sh
    # What people put in crontab around a job.
    URL="$1"; shift
    curl -fsS -m 10 --retry 5 -o /dev/null "$URL/start"
    "$@" > "$JOB_LOG" 2>&1
    curl -fsS -m 10 --retry 5 -o /dev/null --data-binary "@$JOB_LOG" "$URL/$?"
    """
).lstrip()


def test_a_crontab_curl_wrapper_reports_start_and_exit_status(
    node: tuple[Serve, str], tmp_path: Path
) -> None:
    wrapper = tmp_path / "wrap.sh"
    wrapper.write_text(WRAPPER)
    wrapper.chmod(0o755)
    mon = monitor(node, "crontab job")
    env = {"PATH": "/usr/bin:/bin", "JOB_LOG": str(tmp_path / "job.log")}

    def run(*job: str) -> None:
        subprocess.run([str(wrapper), mon["ping_url"], *job], env=env, check=True, timeout=60)

    run("sh", "-c", "echo dumped 42 tables")
    state = current(node, mon)
    assert state["status"] == "up" and state["last_duration_ms"] is not None
    run("sh", "-c", "echo cannot connect >&2; exit 7")
    assert current(node, mon)["status"] == "down"
    log = pings(node, mon)
    assert [(p["kind"], p["exit_status"]) for p in log] == [
        ("fail", 7),
        ("start", None),
        ("success", 0),
        ("start", None),
    ]
    assert log[0]["body"].strip() == "cannot connect"
    assert log[2]["body"].strip() == "dumped 42 tables"
    assert log[0]["user_agent"].startswith("curl/")
    # GET and HEAD work too, and rid pairs a run; -f makes curl fail on 404 and 400.
    url = mon["ping_url"]
    rid = "6f1b0c1e-3c2d-4e5f-8a9b-0c1d2e3f4a5b"
    for args in (["-I", f"{url}/start?rid={rid}"], [f"{url}/0?rid={rid}"], [f"{url}/log"]):
        subprocess.run(["curl", "-fsS", "-m", "10", "-o", "/dev/null", *args], check=True)
    assert current(node, mon)["status"] == "up"
    log = pings(node, mon)
    assert [(p["kind"], p["method"], p["rid"]) for p in log[:3]] == [
        ("log", "GET", None),
        ("success", "GET", rid),
        ("start", "HEAD", rid),
    ]
    bad = subprocess.run(["curl", "-fsS", "-m", "10", f"{url}/256"], capture_output=True)
    assert bad.returncode == 22  # curl -f: HTTP 400
    missing = subprocess.run(
        ["curl", "-sS", "-m", "10", node[0].url + "/ping/00000000-0000-4000-8000-000000000000"],
        capture_output=True,
        text=True,
    )
    assert missing.stdout == "not found"
