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

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

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
