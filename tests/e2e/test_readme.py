"""The README's "Try it" runs as written: its shell blocks, in order, against a real server and
a real ``runlater receive``, with only the ports and the data dir substituted. Each ``# -> ``
line is what the README says the block prints (``...`` stands for anything); a README edit
that breaks an example fails here.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path
from typing import IO

import pytest

from tests.helpers.process import ROOT, base_env, free_port, wait_until

pytestmark = pytest.mark.slow

SERVER_PORT, RECEIVER_PORT = "8000", "9000"


def try_it_blocks() -> list[str]:
    readme = (ROOT / "README.md").read_text("utf-8")
    section = readme.split("\n## Try it\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.*?)```", section, re.S)


def expected_lines(block: str) -> list[re.Pattern[str]]:
    """The ``# -> `` lines of a block as patterns: ``...`` matches anything."""
    found = []
    for line in block.splitlines():
        if line.startswith("# -> "):
            parts = [re.escape(p) for p in line.removeprefix("# -> ").split("...")]
            found.append(re.compile(".*?".join(parts)))
    return found


def substituted(block: str, ports: dict[str, str]) -> str:
    for old, new in ports.items():
        block = block.replace(f"127.0.0.1:{old}", f"127.0.0.1:{new}")
        block = re.sub(rf"--port {old}\b", f"--port {new}", block)
    return block


class Background:
    """A long-running block (server, receiver): its output collected in a file."""

    def __init__(self, script: str, env: dict[str, str]) -> None:
        self.out_path = Path(tempfile.mkstemp(prefix="readme-", suffix=".out")[1])
        self.out: IO[bytes] = self.out_path.open("wb")
        self.proc = subprocess.Popen(
            ["bash", "-c", script],
            cwd=ROOT,
            env=env,
            stdout=self.out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def text(self) -> str:
        return self.out_path.read_text(errors="replace")

    def wait_for(self, pattern: re.Pattern[str], timeout_s: float) -> None:
        def seen() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"exited early ({self.proc.returncode}):\n{self.text()}")
            return any(pattern.fullmatch(line) for line in self.text().splitlines())

        wait_until(seen, timeout_s, f"output matching {pattern.pattern!r}\n{self.text()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.out.close()


def run_block(script: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        ["bash", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"{script}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_the_readme_try_it_section_works_as_written() -> None:
    serve_block, receive_block, create_block, check_block, monitor_block = try_it_blocks()
    ports = {SERVER_PORT: str(free_port()), RECEIVER_PORT: str(free_port())}
    data_dir = Path(tempfile.mkdtemp(prefix="runlater-readme-"))
    os.chmod(data_dir, 0o755)  # the postgres OS user must reach <dir>/pg when we are root
    env = {
        k: v
        for k, v in base_env(RUNLATER_DATA_DIR=str(data_dir)).items()
        if k != "RUNLATER_ALLOW_PRIVATE_TARGETS"
    }
    server = Background(
        substituted(serve_block, ports), {**env, "RUNLATER_PORT": ports[SERVER_PORT]}
    )
    receiver = None
    try:
        [serving] = expected_lines(substituted(serve_block, ports))
        server.wait_for(serving, 180)
        receiver = Background(substituted(receive_block, ports), env)
        [receiving] = expected_lines(substituted(receive_block, ports))
        receiver.wait_for(receiving, 30)

        script = substituted(create_block, ports)
        out = run_block(script + '\nprintf "\\nKEY=%s\\n" "$KEY"\n', env)
        key = out.rsplit("KEY=", 1)[1].strip()
        [queued] = expected_lines(script)
        assert queued.fullmatch(out.split("\nKEY=")[0].strip()), out

        # What the prose after the block says the receiver shows.
        receiver.wait_for(re.compile(re.escape("--- POST /hello") + ".*"), 30)
        shown = receiver.text()
        assert "content-type: application/json" in shown and "webhook-signature: v1," in shown
        assert '\n{"hello":"world"}\n' in shown

        check = substituted(check_block, ports)
        [listed] = expected_lines(check)
        wait_until(
            lambda: listed.fullmatch(run_block(check, {**env, "KEY": key}).strip()),
            30,
            "the task listed with last_execution_status success",
        )

        # A heartbeat monitor, and the crontab wrapper's pings around a job: the monitor up.
        watched = substituted(monitor_block, ports)
        [up] = expected_lines(watched)
        out = run_block(watched, {**env, "KEY": key})
        assert up.fullmatch(out.strip().splitlines()[-1]), out
    finally:
        if receiver is not None:
            receiver.stop()
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
    assert "level=ERROR" not in server.text(), server.text()
