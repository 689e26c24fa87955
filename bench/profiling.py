"""py-spy attached to a running node: a flame graph plus a text summary of where CPU goes.

Two ``py-spy record`` samplers run side by side on the node's pid: a blocking one writes
collapsed stacks, which :func:`summarize` folds into self time by function and time by
component, and a ``--nonblocking`` one writes the SVG flame graph.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

# Inclusive buckets: a sample counts for the first listed bucket whose marker appears anywhere in
# its stack (innermost frame first), so nested work is charged to the most specific component.
BUCKETS: list[tuple[str, tuple[str, ...]]] = [
    ("SSRF check (check_url/getaddrinfo)", ("check_url (runlater/delivery/ssrf",)),
    ("httpx/httpcore client (delivery HTTP)", ("httpx/", "httpcore/")),
    ("asyncpg (protocol, codecs)", ("asyncpg/",)),
    ("trio-asyncio bridge / asyncio loop", ("trio_asyncio/", "asyncio/")),
    ("web API (hypercorn/quart/pydantic)", ("hypercorn/", "quart/", "werkzeug/", "pydantic")),
    ("runlater engine code", ("runlater/",)),
    ("trio scheduler / IO", ("trio/",)),
]


def available() -> bool:
    return shutil.which("py-spy") is not None


class Recorder:
    def __init__(self, pid: int, out_dir: Path, name: str, rate: int = 100) -> None:
        self.pid = pid
        self.svg = out_dir / f"{name}.svg"
        self.raw = out_dir / f"{name}.collapsed.txt"
        self.rate = rate
        self.procs: list[subprocess.Popen] = []

    def start(self) -> None:
        # The collapsed stacks come from a blocking sampler (py-spy pauses the process for each
        # sample, so stacks are complete); the SVG from a non-blocking one (no ptrace, so both
        # can attach at once; its stacks are occasionally truncated).
        for fmt, out, blocking in (("raw", self.raw, True), ("flamegraph", self.svg, False)):
            cmd = ["py-spy", "record", "--pid", str(self.pid), "--rate", str(self.rate)]
            cmd += ["--format", fmt, "-o", str(out)]
            if not blocking:
                cmd.append("--nonblocking")
            self.procs.append(
                subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            )

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
        for proc in self.procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                proc.wait(5)
        self.procs = []


def _short(frame: str) -> str:
    """'func (path/to/site-packages/pkg/mod.py:12)' -> 'func (pkg/mod.py:12)'."""
    if "(" not in frame:
        return frame
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    for marker in ("site-packages/", "lib/python3.11/", "/work/main/"):
        if marker in where:
            where = where.split(marker, 1)[1]
    return f"{name} ({where})"


def _no_line(frame: str) -> str:
    return frame.rsplit(":", 1)[0] + ")" if ":" in frame else frame


def summarize(raw_path: Path, top: int = 25) -> dict[str, Any]:
    """Self time per function and inclusive time per component, as % of active samples."""
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    buckets: Counter[str] = Counter()
    total = 0
    if not raw_path.exists():
        return {"samples": 0}
    for line in raw_path.read_text(errors="replace").splitlines():
        stack, _, count_s = line.rpartition(" ")
        if not stack or not count_s.isdigit():
            continue
        count = int(count_s)
        frames = [_no_line(_short(f)) for f in stack.split(";")]
        frames = [f for f in frames if not f.startswith("process ") and not f.startswith("thread ")]
        if not frames:
            continue
        total += count
        self_time[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
        # Frames above trio's run loop (cli.main, trio.run) are in every stack: bucket only
        # what runs inside the trio task (nothing left: the scheduler's own work).
        task = frames
        for i in range(len(frames) - 1, -1, -1):
            if frames[i].startswith("unrolled_run (trio/"):
                task = frames[i + 1 :]
                break
        if not task:
            buckets["trio scheduler / IO"] += count
            continue
        joined = ";".join(reversed(task))
        for name, markers in BUCKETS:
            if any(m in joined for m in markers):
                buckets[name] += count
                break
        else:
            buckets["other"] += count

    def pct(counter: Counter[str], n: int) -> list[dict[str, Any]]:
        return [{"frame": f, "pct": round(100 * c / total, 1)} for f, c in counter.most_common(n)]

    roots = ("main (runlater/cli.py)", "<module> (runlater/__main__.py)")
    markers = (
        "runlater/",
        "httpx/",
        "httpcore/",
        "asyncpg/",
        "trio_asyncio/",
        "hypercorn/",
        "quart",
    )
    interesting = Counter(
        {f: c for f, c in inclusive.items() if f not in roots and any(k in f for k in markers)}
    )
    # httpcore's pool bookkeeping (assigning requests to connections, expiry scans): the pool's
    # inclusive time minus the connection's - the part that grows with concurrency.
    pool = inclusive.get(
        "AsyncConnectionPool.handle_async_request (httpcore/_async/connection_pool.py)", 0
    )
    conn = inclusive.get(
        "AsyncHTTPConnection.handle_async_request (httpcore/_async/connection.py)", 0
    )
    return {
        "samples": total,
        "components_pct": pct(buckets, len(buckets)),
        "self_top": pct(self_time, top),
        "inclusive_top": pct(interesting, top),
        "httpcore_pool_bookkeeping_pct": round(100 * (pool - conn) / total, 1) if total else None,
        "asyncpg_reset_on_release_pct": round(
            100 * inclusive.get("Connection.reset (asyncpg/connection.py)", 0) / total, 1
        )
        if total
        else None,
    }
