"""The setup the two README commands share: one install serves both, and the build is quiet.

``ensure_venv`` decides when to run pip; a stand-in ``python`` in a scratch venv records the
pip commands it is asked to run, so the decision is tested without installing anything.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.helpers.process import ROOT


def pip_runs(venv: Path, *wants: str) -> list[str]:
    """The pip commands ``ensure_venv`` runs for each wanted install, in order."""
    log = venv / "pip.log"
    log.unlink(missing_ok=True)
    script = f"source {ROOT}/scripts/_setup.sh\n" + "\n".join(
        f"ensure_venv {want}; echo done-{want} >> {log}" for want in wants
    )
    env = {**os.environ, "RUNLATER_VENV": str(venv)}
    subprocess.run(["bash", "-c", script], check=True, env=env, timeout=60)
    return [line.strip() for line in log.read_text().splitlines()]


@pytest.fixture
def venv() -> Path:
    path = Path(tempfile.mkdtemp(prefix="runlater-venv-"))
    (path / "bin").mkdir()
    fake = path / "bin" / "python"
    fake.write_text(f'#!/bin/sh\necho "pip $*" | sed "s/^pip -m pip /pip /" >> {path}/pip.log\n')
    fake.chmod(0o755)
    return path


def test_switching_between_run_and_test_does_not_reinstall(venv: Path) -> None:
    first = pip_runs(venv, "test", "run", "test", "run")
    installs = [line for line in first if "install -q -e" in line]
    assert installs == [f"pip install -q -e {ROOT}[test]"]
    assert first[-3:] == ["done-run", "done-test", "done-run"]


def test_a_run_install_is_completed_once_for_the_tests(venv: Path) -> None:
    runs = [line for line in pip_runs(venv, "run", "test", "run", "test") if "-e" in line]
    assert runs == [f"pip install -q -e {ROOT}", f"pip install -q -e {ROOT}[test]"]


def test_a_newer_pyproject_reinstalls(venv: Path) -> None:
    pip_runs(venv, "test")
    stamp = venv / ".runlater-installed"
    os.utime(stamp, (0, 0))  # older than pyproject.toml
    again = [line for line in pip_runs(venv, "test") if "-e" in line]
    assert again == [f"pip install -q -e {ROOT}[test]"]


@pytest.mark.slow
def test_the_build_prints_no_license_deprecation_warning() -> None:
    """setuptools warned twice per install about ``project.license`` as a table."""
    with tempfile.TemporaryDirectory() as out:
        done = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "-w", out, str(ROOT)],
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert done.returncode == 0, done.stderr[-2000:]
    output = done.stdout + done.stderr
    assert "project.license" not in output
    assert "License classifiers are deprecated" not in output
