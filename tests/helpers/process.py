"""Real ``runlater serve`` processes, a sink process, and synchronous SQL for process tests."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(
    predicate: Callable[[], Any], timeout_s: float, what: str, interval_s: float = 0.1
) -> Any:
    """Poll ``predicate`` until it returns something truthy, or fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(interval_s)


def sql(dsn: str, query: str, *args: Any) -> list[dict[str, Any]]:
    async def go() -> list[dict[str, Any]]:
        conn = await asyncpg.connect(dsn)
        try:
            return [dict(r) for r in await conn.fetch(query, *args)]
        finally:
            await conn.close()

    return asyncio.run(go())


def base_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNLATER_")}
    env.update(RUNLATER_ALLOW_PRIVATE_TARGETS="true", PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


class Serve:
    """One ``runlater serve`` node."""

    def __init__(self, env: dict[str, str], port: int | None = None) -> None:
        self.port = port or free_port()
        self.env = {**env, "RUNLATER_PORT": str(self.port)}
        fd, self.log_path = tempfile.mkstemp(prefix="runlater-serve-", suffix=".log")
        self.log = os.fdopen(fd, "wb")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, ready_timeout_s: float = 60) -> Serve:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "runlater", "serve"],
            cwd=ROOT,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        wait_until(self._healthy, ready_timeout_s, f"node on port {self.port} to be healthy")
        return self

    def _healthy(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"node exited early ({self.proc.returncode}):\n{self.output()}")
        try:
            return httpx.get(self.url + "/health/ready", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def output(self) -> str:
        return Path(self.log_path).read_text(errors="replace")

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self, timeout_s: float = 20) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode


def bootstrap(env: dict[str, str], org: str = "Acme", tier: str = "pro") -> str:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "runlater",
            "bootstrap",
            "--org",
            org,
            "--email",
            f"owner@{org.lower()}.test",
            "--tier",
            tier,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


class SinkProcess:
    """The recording HTTP sink in its own process; requests read back from its JSON log."""

    def __init__(self) -> None:
        fd, self.log_path = tempfile.mkstemp(prefix="sink-", suffix=".jsonl")
        os.close(fd)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.helpers.sink", "--log", self.log_path],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line.startswith("PORT "), line
        self.port = int(line.split()[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def requests(self) -> list[dict[str, Any]]:
        text = Path(self.log_path).read_text()
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def held(self) -> int:
        return int(httpx.get(self.url + "/_held", timeout=2).text)

    def open_gate(self) -> None:
        httpx.get(self.url + "/_open_gate", timeout=2)

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait(5)


def api(node: Serve, key: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.request(
        method,
        node.url + "/api/v1" + path,
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
        **kwargs,
    )
