"""Virtualenvs of their own for real client libraries whose pins clash with the project's
(the ``healthchecks-io`` client pins ``httpx<0.28``; docs/testing.md). Made once, under
``.cache/client-venvs/<name>``, and reused; a file lock keeps parallel test workers from
building the same one twice."""

from __future__ import annotations

import fcntl
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENVS = ROOT / ".cache" / "client-venvs"


def client_venv(name: str, *requirements: str) -> Path:
    """The python of a virtualenv holding ``requirements`` (pip specifiers), made if needed."""
    venv = VENVS / name
    python = venv / "bin" / "python"
    stamp = venv / ".installed"
    wanted = "\n".join(requirements)
    VENVS.mkdir(parents=True, exist_ok=True)
    with open(VENVS / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stamp.exists() and stamp.read_text() == wanted and python.exists():
            return python
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        subprocess.run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "-q",
                "--disable-pip-version-check",
                *requirements,
            ],
            check=True,
        )
        stamp.write_text(wanted)
    return python
