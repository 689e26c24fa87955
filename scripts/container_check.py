"""Run the Runlater image for real: the second half of ``scripts/container-check``.

Builds the image, starts it with a volume, waits for ``/health``, bootstraps an organization
through ``podman exec``, creates a task aimed at ``runlater receive`` on the host and waits for
the signed delivery, stops the container with SIGTERM (Postgres must log a clean shutdown),
starts it again and finds the task, its execution and the API key still there. Prints the image
size and the timings; exits non-zero with the reason on the first thing that does not hold.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
IMAGE = "localhost/runlater:check"
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")
# podman on these machines may not raise limits above the caller's; these fit under them.
LIMITS = ["--ulimit", "nofile=10000:10000", "--ulimit", "nproc=10000:10000"]
# How a container reaches the host (podman adds it to the container's /etc/hosts).
HOST_FROM_CONTAINER = "host.containers.internal"


class CheckFailed(Exception):
    """What did not hold; main prints it and exits 1."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Podman:
    def __init__(self, command: str) -> None:
        self.command = shlex.split(command)

    def run(
        self, *args: str, check: bool = True, timeout: float = 600, stderr: bool = False
    ) -> str:
        """podman's stdout (with its stderr when ``stderr``); raises when it fails."""
        result = subprocess.run(
            [*self.command, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT if stderr else subprocess.PIPE,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise CheckFailed(f"podman {' '.join(args[:2])} failed: {result.stderr.strip()}")
        return result.stdout

    @contextmanager
    def pip_mounts(self) -> Iterator[list[str]]:
        """Let pip inside RUN trust this machine's CA bundle without changing the Dockerfile.

        Mounted beside the image's own bundle (mounting over it breaks its apt-get install of
        ca-certificates); only when the host has one."""
        if not HOST_CA.exists():
            yield []
            return
        with tempfile.TemporaryDirectory() as tmp:
            conf = Path(tmp) / "pip.conf"
            conf.write_text("[global]\ncert = /run/host-ca.pem\n")
            yield ["-v", f"{HOST_CA}:/run/host-ca.pem:ro", "-v", f"{conf}:/etc/pip.conf:ro"]


def wait_healthy(url: str, container: str, podman: Podman, deadline_s: float = 90) -> float:
    started = time.monotonic()
    while time.monotonic() - started < deadline_s:
        with contextlib.suppress(httpx.TransportError):  # not listening yet
            if httpx.get(url, timeout=2).status_code == 200:
                return time.monotonic() - started
        state = podman.run("inspect", "--format", "{{.State.Status}}", container).strip()
        if state not in ("running", "created", "configured"):
            raise CheckFailed(f"container {state} before healthy:\n{logs(podman, container)}")
        time.sleep(0.2)
    raise CheckFailed(f"{url} not healthy after {deadline_s} s:\n{logs(podman, container)}")


def logs(podman: Podman, container: str) -> str:
    """The container's last lines, stdout and stderr together."""
    return podman.run("logs", "--tail", "40", container, check=False, stderr=True)


def wait_for_line(path: Path, needle: str, deadline_s: float) -> str:
    started = time.monotonic()
    while time.monotonic() - started < deadline_s:
        text = path.read_text()
        if needle in text:
            return text
        time.sleep(0.1)
    raise CheckFailed(f"{needle!r} not seen within {deadline_s} s; got:\n{path.read_text()}")


def step(message: str) -> None:
    print(f"container check: {message}", flush=True)


def readme_commands() -> list[list[str]]:
    """The README's "In a container" block, one argv per line."""
    readme = (ROOT / "README.md").read_text("utf-8")
    section = readme.split("\n## In a container\n", 1)[1].split("\n## ", 1)[0]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    commands = [shlex.split(line) for line in block.splitlines() if line.strip()]
    verbs = [argv[:2] for argv in commands]
    if verbs != [["docker", "build"], ["docker", "run"], ["docker", "exec"]]:
        raise CheckFailed(f"README's container block changed shape: {verbs}; update this check")
    return commands


def substitute(argv: list[str], names: dict[str, str], extra: list[str]) -> list[str]:
    """A README command for podman here: ``extra`` flags after the verb, and this check's names
    for the container, volume, image and host port instead of "runlater" and 8000."""
    verb, args = argv[1], list(argv[2:])
    for i, arg in enumerate(args):
        previous = args[i - 1] if i else ""
        if previous == "-t" or (verb == "run" and i == len(args) - 1 and arg == "runlater"):
            args[i] = names["image"]
        elif previous == "--name" or (verb == "exec" and i == 0):
            args[i] = names["container"]
        elif arg.startswith("runlater:/"):
            args[i] = names["volume"] + arg[len("runlater") :]
        elif arg == "8000:8000":
            args[i] = names["ports"]
    return [verb, *extra, *args]


def check(podman: Podman, keep: bool) -> None:
    build, run, exec_ = readme_commands()
    suffix = f"{os.getpid()}"
    port, inner_port = free_port(), 8123  # not 8000: the HEALTHCHECK must follow RUNLATER_PORT
    names = {
        "container": f"runlater-check-{suffix}",
        "volume": f"runlater-check-{suffix}",
        "image": IMAGE,
        "ports": f"{port}:{inner_port}",
    }
    container, volume = names["container"], names["volume"]
    build_started = time.monotonic()
    with podman.pip_mounts() as mounts:
        # podman's default OCI format would drop HEALTHCHECK; there is no registry to pull from.
        argv = substitute(build, names, ["--pull=never", "--format", "docker", *LIMITS, *mounts])
        podman.run(*argv[:-1], str(ROOT))  # the README's "." is the repository
    build_s = time.monotonic() - build_started
    size_mb = int(podman.run("image", "inspect", "--format", "{{.Size}}", IMAGE)) / 1e6
    step(f"image {IMAGE} built in {build_s:.0f} s, {size_mb:.0f} MB")

    base = f"http://127.0.0.1:{port}"
    env = ["-e", f"RUNLATER_PORT={inner_port}", "-e", "RUNLATER_ALLOW_PRIVATE_TARGETS=true"]
    receiver: subprocess.Popen[str] | None = None
    try:
        podman.run(*substitute(run, names, [*LIMITS, *env]))
        first_start_s = wait_healthy(f"{base}/health", container, podman)
        step(f"healthy {first_start_s:.1f} s after start (initdb + migrations)")

        uid = podman.run("exec", container, "id", "-u").strip()
        if uid == "0":
            raise CheckFailed("the server runs as root in the container")
        podman.run("healthcheck", "run", container)  # the image's HEALTHCHECK, on RUNLATER_PORT
        step(f"runs as uid {uid}; the image's HEALTHCHECK passes on port {inner_port}")

        out = podman.run(*substitute(exec_, names, []))
        lines = out.splitlines()
        key = lines[lines.index("API key (shown once):") + 1].strip()
        auth = {"Authorization": f"Bearer {key}"}
        secret = httpx.get(f"{base}/api/v1/org", headers=auth).json()["data"]["webhook_secret"]
        step(f"bootstrap through podman exec: {lines[0]}")

        target_port = free_port()
        received = Path(tempfile.mkstemp(prefix="runlater-check-", suffix=".log")[1])
        receiver = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "runlater"), "receive", "--host", "0.0.0.0",
                "--port", str(target_port), "--secret", secret,
            ],
            stdout=received.open("w"), stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        wait_for_line(received, "receiving on", 20)
        task = httpx.post(
            f"{base}/api/v1/tasks",
            headers=auth,
            json={
                "url": f"http://{HOST_FROM_CONTAINER}:{target_port}/from-container",
                "body": {"hi": 1},
            },
        )
        if task.status_code != 202:
            raise CheckFailed(f"task not accepted: {task.status_code} {task.text}")
        task_id = task.json()["data"]["task_id"]
        wait_for_line(received, "/from-container", 30)
        text = wait_for_line(received, "signatures:", 5)
        if "webhook-signature valid" not in text:
            raise CheckFailed(f"delivery arrived without a valid signature:\n{text}")
        step(f"task {task_id} delivered to the host, signature valid")

        stop_started = time.monotonic()
        podman.run("stop", "--time", "30", container)  # SIGTERM, SIGKILL only after 30 s
        stop_s = time.monotonic() - stop_started
        code = podman.run("inspect", "--format", "{{.State.ExitCode}}", container).strip()
        mountpoint = podman.run("volume", "inspect", "--format", "{{.Mountpoint}}", volume)
        pg_log = (Path(mountpoint.strip()) / "pg.log").read_text().splitlines()
        if code != "0":
            raise CheckFailed(f"exit code {code} after SIGTERM:\n{logs(podman, container)}")
        if not pg_log or "database system is shut down" not in pg_log[-1]:
            raise CheckFailed("Postgres did not log a clean shutdown:\n" + "\n".join(pg_log[-10:]))
        step(f"SIGTERM: stopped in {stop_s:.1f} s, exit 0; pg.log: {pg_log[-1].strip()}")

        podman.run("start", container)
        restart_s = wait_healthy(f"{base}/health", container, podman)
        got = httpx.get(f"{base}/api/v1/tasks/{task_id}/executions", headers=auth)
        if got.status_code != 200:
            raise CheckFailed(f"after restart: {got.status_code} {got.text}")
        statuses = [item["status"] for item in got.json()["data"]]
        if statuses != ["success"]:
            raise CheckFailed(f"after restart the executions are {json.dumps(statuses)}")
        step(f"restarted, healthy in {restart_s:.1f} s; key, task and its execution kept")
        print(
            json.dumps(
                {
                    "image_mb": round(size_mb),
                    "build_s": round(build_s, 1),
                    "first_start_healthy_s": round(first_start_s, 2),
                    "stop_s": round(stop_s, 2),
                    "restart_healthy_s": round(restart_s, 2),
                }
            )
        )
    finally:
        if receiver is not None:
            receiver.terminate()
            receiver.wait(10)
        if not keep:
            podman.run("rm", "--force", "--time", "5", container, check=False)
            podman.run("volume", "rm", "--force", volume, check=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--podman", default="podman", help="podman command with its flags")
    parser.add_argument("--keep", action="store_true", help="keep the container and volume")
    args = parser.parse_args()
    try:
        check(Podman(args.podman), args.keep)
    except CheckFailed as failed:
        print(f"container check FAILED: {failed}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
