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
        # Which database: a second terminal without RUNLATER_DATA_DIR would see another one.
        assert f"database: embedded Postgres in {data_dir} (RUNLATER_DATA_DIR)" in first.stdout

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


def test_no_arguments_prints_the_help() -> None:
    done = _run(base_env())
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: runlater")
    for command in ("serve", "migrate", "bootstrap"):
        assert command in done.stdout


def test_every_command_help_names_its_options_and_environment() -> None:
    expected = {
        "serve": ("--host", "--port", "RUNLATER_HOST", "RUNLATER_PORT", "RUNLATER_LOG_FORMAT"),
        "migrate": (),
        "bootstrap": ("--org", "--email", "--tier"),
        "receive": ("--host", "--port", "--secret", "--status", "RUNLATER_ALLOW_PRIVATE_TARGETS"),
    }
    database = ("RUNLATER_DATABASE_URL", "RUNLATER_DATA_DIR")
    for command, names in expected.items():
        done = _run(base_env(), command, "--help")
        assert done.returncode == 0, done.stderr
        for name in (*names, *(database if command != "receive" else ())):
            assert name in done.stdout, (command, name)
        assert "``" not in done.stdout, command  # no reStructuredText in a terminal


def test_a_database_url_is_shown_without_its_password() -> None:
    from runlater.cli import redact_dsn

    assert redact_dsn("postgresql://app:s3cret@db:5432/rl") == "postgresql://app:***@db:5432/rl"
    assert redact_dsn("postgresql://db:5432/rl") == "postgresql://db:5432/rl"
