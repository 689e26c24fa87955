"""Schemathesis against ``/api/v1/openapi.json`` of a real server: no 5xx, nothing off-spec.

The server is the app on hypercorn (``tests/contract/server.py``) with rate limits off and
private targets allowed, on a fresh database, without scheduler or workers: tasks the fuzzer
creates are stored but never delivered, and every host name it invents resolves to 127.0.0.1
without a DNS query, so the run causes no outbound traffic. Schemathesis runs as its own CLI
process (examples, coverage, fuzzing and stateful phases) with the checks: no server error,
status code, content type and response schema conformance. The server counts what it answered,
independently of what schemathesis reports.

Bounded form (the suite): deterministic generation, ``FUZZ_MAX_EXAMPLES`` per operation, at
least ``MIN_REQUESTS`` requests in all. Long form: ``scripts/fuzz`` (random generation from a
printed seed, 20,000+ requests); the environment variables below tune both.
"""

from __future__ import annotations

import base64
import json
import os
import random
import re
import socket
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path

import httpx

from runlater.config import Settings
from tests.contract.fuzz_hooks import PROTECTED_KEY_ENV
from tests.contract.server import ServerThread

ROOT = Path(__file__).resolve().parents[2]
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
)
MIN_REQUESTS = 1000
FUZZ_MAX_EXAMPLES = int(os.environ.get("RUNLATER_FUZZ_MAX_EXAMPLES", "12"))
FUZZ_MIN_REQUESTS = int(os.environ.get("RUNLATER_FUZZ_MIN_REQUESTS", str(MIN_REQUESTS)))
FUZZ_TIMEOUT_S = int(os.environ.get("RUNLATER_FUZZ_TIMEOUT_S", "900"))
FUZZ_SEED = os.environ.get("RUNLATER_FUZZ_SEED")  # unset: deterministic generation


def schemathesis_run(url: str, key: str, key_row_id: str, report: Path) -> str:
    """Run ``st run`` against ``url``; its console output. Raises if it found failures."""
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "run",
        f"{url}/api/v1/openapi.json",
        "--header",
        f"Authorization: Bearer {key}",
        "--checks",
        ",".join(CHECKS),
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--max-examples",
        str(FUZZ_MAX_EXAMPLES),
        *(["--seed", FUZZ_SEED] if FUZZ_SEED else ["--generation-deterministic"]),
        "--workers",
        "1",
        "--request-timeout",
        "30",
        "--report",
        "ndjson",
        "--report-ndjson-path",
        str(report),
        "--no-color",
    ]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.contract.fuzz_hooks"}
    env[PROTECTED_KEY_ENV] = key_row_id
    done = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=FUZZ_TIMEOUT_S
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"schemathesis found problems:\n{output[-30000:]}"
    return output


def sent_requests(report: Path) -> tuple[int, Counter[str]]:
    """Requests schemathesis sent (one per interaction it recorded) and its check outcomes."""
    requests = 0
    outcomes: Counter[str] = Counter()
    for line in report.read_text().splitlines():
        event = json.loads(line)
        finished = event.get("ScenarioFinished")
        if finished is None:
            continue
        requests += len(finished["recorder"].get("interactions", {}))
        for results in finished["recorder"].get("checks", {}).values():
            outcomes.update(f"{r['name']}:{r['status']}" for r in results)
    return requests, outcomes


def test_generated_requests_get_no_5xx_and_only_answers_the_spec_describes(
    database_url: str, tmp_path: Path
) -> None:
    settings = Settings(allow_private_targets=True, rate_limit_per_key=0, rate_limit_per_ip=0)
    report = tmp_path / "schemathesis.ndjson"
    with ServerThread(database_url, settings) as server:
        output = schemathesis_run(server.url, server.key, server.key_row_id, report)
        answered = dict(server.responses)
    requests, outcomes = sent_requests(report)
    summary = f"{requests} requests, server answered {sorted(answered.items())}\n{output[-3000:]}"
    assert requests >= FUZZ_MIN_REQUESTS, summary
    assert sum(answered.values()) >= requests, summary  # each reached the real server
    assert not [s for s in answered if s >= 500], summary
    assert sum(n for s, n in answered.items() if 200 <= s < 300) >= requests // 10, summary
    assert not [o for o in outcomes if not o.endswith(":success")], outcomes
    for check in CHECKS:
        assert outcomes[f"{check}:success"] >= requests // 2, (check, outcomes)


def _websocket_status(url: str, path: str, extra_headers: str = "") -> int:
    """Status of a websocket upgrade request to ``path`` (a raw handshake, any bytes)."""
    host, port = url.removeprefix("http://").split(":")
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        f"{extra_headers}\r\n"
    )
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request.encode("latin-1"))
        head = b""
        while b"\r\n" not in head:
            chunk = sock.recv(4096)
            if not chunk:
                break
            head += chunk
    return int(head.split(b" ", 2)[1])


def test_websocket_upgrades_to_any_path_get_no_5xx(database_url: str) -> None:
    """Every documented path (ids filled in), with and without a key, odd paths and odd
    headers: a websocket upgrade is answered like any request, never with a 5xx."""
    rng = random.Random(int(FUZZ_SEED or 7))
    settings = Settings(allow_private_targets=True, rate_limit_per_key=0, rate_limit_per_ip=0)
    with ServerThread(database_url, settings) as server:
        spec = httpx.get(f"{server.url}/api/v1/openapi.json", timeout=10).json()
        paths = [re.sub(r"\{[^}]+\}", str(uuid.uuid4()), p) for p in spec["paths"]]
        paths += ["/", "/api/v1/live", "/metrics", "/health", "/%00", "/api/v1/../x", "/" * 300]
        paths += ["/" + "".join(rng.choice("ab%/?.;~") for _ in range(30)) for _ in range(50)]
        auth = f"Authorization: Bearer {server.key}\r\n"
        statuses = Counter(
            _websocket_status(server.url, path, headers)
            for path in paths
            for headers in (
                "",
                auth,
                "Origin: http://evil.test\r\n",
                "Sec-WebSocket-Protocol: x\r\n",
            )
        )
    assert sum(statuses.values()) == len(paths) * 4
    assert not [s for s in statuses if s >= 500], statuses
    assert statuses[404] > 0, statuses
