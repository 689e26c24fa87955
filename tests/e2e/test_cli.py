"""CLI commands on the embedded Postgres when no ``serve`` is running."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from runlater.store.migrate import available
from tests.helpers.process import ROOT, base_env


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runlater", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_starts_and_stops_its_own_embedded_postgres() -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="runlater-cli-"))
    os.chmod(data_dir, 0o755)
    env = base_env(RUNLATER_DATA_DIR=str(data_dir))
    try:
        migrated = _run(env, "migrate")
        assert migrated.returncode == 0, migrated.stderr
        versions = [m.version for m in available()]
        assert f"migrations applied: {versions}" in migrated.stdout
        assert not (data_dir / "pg" / "postmaster.pid").exists(), "left Postgres running"

        first = _run(env, "bootstrap", "--org", "Solo", "--email", "me@solo.test")
        assert first.returncode == 0, first.stderr
        key = first.stdout.strip().splitlines()[-1]
        assert re.fullmatch(r"pk_live_[A-Za-z0-9]{24}\.sk_live_[A-Za-z0-9]{32}", key)
        assert "organization created: Solo" in first.stdout

        again = _run(env, "bootstrap", "--org", "Solo", "--email", "me@solo.test")
        assert again.returncode == 0, again.stderr
        assert "organization exists: Solo" in again.stdout
        assert again.stdout.strip().splitlines()[-1] != key

        up_to_date = _run(env, "migrate")
        assert "none (up to date)" in up_to_date.stdout
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def test_bad_configuration_is_one_clear_line() -> None:
    done = _run(base_env(RUNLATER_DATABASE_URL="mysql://nope", RUNLATER_MAX_WORKERS="x"), "migrate")
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0
    assert done.stderr.startswith("runlater: RUNLATER_MAX_WORKERS must be a int")
