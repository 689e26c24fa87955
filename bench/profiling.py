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
# On the runlater transport a delivery's stack is Deliverer -> httpx.AsyncClient.send ->
# TrioTransport -> http11.Connection -> h11 / trio socket calls: h11 first, then the transport
# (its own code and the trio socket I/O under it), then what httpx adds around it. On httpx's
# default transport, httpcore's h11 parsing lands in "h11" and the rest of httpcore in "httpx".
BUCKETS: list[tuple[str, tuple[str, ...]]] = [
    (
        "SSRF check (check_url/resolve_checked)",
        ("check_url (runlater/delivery/ssrf", "resolve_checked (runlater/delivery/ssrf"),
    ),
    ("h11 (HTTP/1.1 parse/serialize)", ("h11/",)),
    (
        "runlater transport (transport.py/http11.py + trio socket I/O under it)",
        ("runlater/delivery/transport.py", "runlater/delivery/http11.py"),
    ),
    ("httpx/httpcore client (around the transport)", ("httpx/", "httpcore/")),
    ("asyncpg (protocol, codecs)", ("asyncpg/",)),
    ("trio-asyncio bridge / asyncio loop", ("trio_asyncio/", "asyncio/")),
    ("web API (hypercorn/quart/pydantic)", ("hypercorn/", "quart/", "werkzeug/", "pydantic")),
    ("runlater engine code", ("runlater/",)),
    ("trio scheduler / IO", ("trio/",)),
]


# A finer, exclusive split of the node's CPU along one delivery (first matching rule wins, so
# the order goes from the most specific to the most general). Made for the runlater transport;
# on httpx's default transport most of the HTTP work lands in "httpx ... other".
PATH_BUCKETS: list[tuple[str, tuple[str, ...]]] = [
    (
        "database: asyncpg + trio-asyncio crossing (claim, complete)",
        ("asyncpg/", "trio_asyncio/", "asyncio/", "runlater/store/"),
    ),
    ("SSRF check / resolve", ("runlater/delivery/ssrf", "runlater/delivery/resolver")),
    (
        "h11: parse the response (next_event, receive_data)",
        ("Connection.next_event (h11/", "Connection.receive_data (h11/"),
    ),
    ("h11: build + serialize the request (h11.Request, send)", ("h11/",)),
    (
        "socket send/recv syscalls (trio)",
        ("_nonblocking_helper (trio/", "SocketStream.send_all", "SocketStream.receive_some"),
    ),
    ("idle-connection liveness poll() (is_readable)", ("is_readable (trio/",)),
    (
        "transport + http11 own code (incl. trio cancel scopes there)",
        ("runlater/delivery/transport.py", "runlater/delivery/http11.py"),
    ),
    ("httpx.Request build (URL, Headers)", ("Request.__init__ (httpx/",)),
    ("httpx Response, aiter_raw, headers, other httpx/httpcore", ("httpx/", "httpcore/")),
    ("request_headers + signing", ("request_headers (runlater/", "runlater/delivery/signing")),
    (
        "Sender/Deliverer own code (deadline scope, timing, body_text, judge)",
        ("runlater/delivery/",),
    ),
    ("worker/pool actors (channels, outcome, bookkeeping)", ("runlater/actors/",)),
    ("web API", ("hypercorn/", "quart/", "werkzeug/", "pydantic")),
    ("other runlater code", ("runlater/",)),
]


# The same kind of exclusive split for an API request (POST /api/v1/tasks, bench/api.py).
API_BUCKETS: list[tuple[str, tuple[str, ...]]] = [
    (
        "database: asyncpg + trio-asyncio crossing (store units)",
        ("asyncpg/", "trio_asyncio/", "asyncio/", "runlater/store/"),
    ),
    ("SSRF check of the task's URLs", ("runlater/delivery/ssrf", "runlater/delivery/resolver")),
    ("validation (runlater/schemas, pydantic)", ("runlater/schemas/", "pydantic")),
    (
        "runlater hooks: rate limits, auth, idempotency, audit",
        (
            "runlater/web/ratelimit",
            "runlater/web/auth",
            "runlater/web/idempotency",
            "runlater/web/audit",
            "runlater/web/api/audit",
        ),
    ),
    ("route handler, serialize, JSON", ("runlater/web/", "json/")),
    (
        "socket send/recv syscalls (trio)",
        ("_nonblocking_helper (trio/", "SocketStream.send_all", "SocketStream.receive_some"),
    ),
    ("h11 (parse the request, serialize the response)", ("h11/",)),
    ("hypercorn (server, protocol, task per request)", ("hypercorn/",)),
    (
        "quart (request context, hooks, dispatch, response)",
        ("quart/", "quart_trio/", "werkzeug/", "blinker/", "quart_schema/"),
    ),
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
    path: Counter[str] = Counter()
    api: Counter[str] = Counter()
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
        # what runs inside the trio task (nothing left, or only the epoll wait that trio.run
        # calls itself: the scheduler's own work).
        task = frames
        for i in range(len(frames) - 1, -1, -1):
            if frames[i].startswith(("unrolled_run (trio/", "run (trio/_core/_run.py")):
                task = frames[i + 1 :]
                break
        if task and all(f.startswith("EpollIOManager.") for f in task):
            task = []
        if not task:
            buckets["trio scheduler / IO"] += count
            path["trio scheduler (epoll wait, run loop)"] += count
            api["trio scheduler (epoll wait, run loop)"] += count
            continue
        joined = ";".join(reversed(task))
        for name, markers in BUCKETS:
            if any(m in joined for m in markers):
                buckets[name] += count
                break
        else:
            buckets["other"] += count
        for name, markers in PATH_BUCKETS:
            if any(m in joined for m in markers):
                path[name] += count
                break
        else:
            path["trio scheduler / other (task switches outside runlater code)"] += count
        for name, markers in API_BUCKETS:
            if any(m in joined for m in markers):
                api[name] += count
                break
        else:
            api["trio scheduler / other (task switches, channels, cancel scopes)"] += count

    def pct(counter: Counter[str], n: int) -> list[dict[str, Any]]:
        return [{"frame": f, "pct": round(100 * c / total, 1)} for f, c in counter.most_common(n)]

    roots = ("main (runlater/cli.py)", "<module> (runlater/__main__.py)")
    markers = (
        "runlater/",
        "h11/",
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

    def incl(*prefixes: str) -> float | None:
        if not total:
            return None
        hits = max((c for f, c in inclusive.items() if f.startswith(prefixes)), default=0)
        return round(100 * hits / total, 1)

    # Nested stages of one delivery (inclusive, % of all node samples), outermost first.
    delivery_path = {
        "Deliverer.deliver": incl("Deliverer.deliver ("),
        "Sender.send (deadline + exchange)": incl("Sender.send ("),
        "AsyncClient.send (httpx)": incl("AsyncClient.send ("),
        "build_request (httpx)": incl("BaseClient.build_request (", "AsyncClient.build_request ("),
        "httpx.Request.__init__": incl("Request.__init__ (httpx/"),
        "httpx.Response.__init__": incl("Response.__init__ (httpx/"),
        "Response.aiter_raw (httpx)": incl("Response.aiter_raw (httpx/"),
        "TrioTransport.handle_async_request": incl("TrioTransport.handle_async_request ("),
        "Connection.send_request (h11 out + head in)": incl("Connection.send_request ("),
        "ResponseStream.__anext__ (body)": incl("ResponseStream.__anext__ ("),
        "Response.aclose (httpx)": incl("Response.aclose ("),
        "request_headers (+ signing)": incl("request_headers ("),
        "AsyncConnectionPool.handle_async_request (httpcore)": incl(
            "AsyncConnectionPool.handle_async_request ("
        ),
    }
    return {
        "samples": total,
        "components_pct": pct(buckets, len(buckets)),
        "delivery_path_pct": {k: v for k, v in delivery_path.items() if v},
        "path_breakdown_pct": pct(path, len(path)),
        "api_breakdown_pct": pct(api, len(api)),
        "self_top": pct(self_time, top),
        "inclusive_top": pct(interesting, top),
        "httpcore_pool_bookkeeping_pct": round(100 * (pool - conn) / total, 1) if total else None,
        "asyncpg_reset_on_release_pct": round(
            100 * inclusive.get("Connection.reset (asyncpg/connection.py)", 0) / total, 1
        )
        if total
        else None,
    }
