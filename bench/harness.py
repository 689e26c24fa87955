"""Shared pieces: the throwaway cluster, child processes, CPU accounting, statistics.

The orchestrator (``python -m bench``) is plain asyncio + asyncpg; the system under test and
every load generator run in their own processes. Nothing here binds anything but 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import re
import resource
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from runlater.store.embedded import EmbeddedPostgres, create_throwaway_cluster

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
PY = sys.executable
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------ statistics


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile (q in 0..100) of ``values``; None when empty."""
    if not values:
        return None
    data = sorted(values)
    if len(data) == 1:
        return data[0]
    pos = (len(data) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return percentile(present, 50)


def summary(values: Sequence[float]) -> dict[str, float | None]:
    return {
        "n": len(values),
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "p99": percentile(values, 99),
        "max": max(values) if values else None,
    }


# ------------------------------------------------------------------------------ machine


def machine_info() -> dict[str, Any]:
    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_gb = None
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_gb = round(int(line.split()[1]) / 1024 / 1024, 1)
    git = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    dirty = subprocess.run(
        ["git", "status", "--short", "--untracked-files=no"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    return {
        "git_head": git.stdout.strip(),
        "git_modified_files": dirty.stdout.split("\n")[:-1] if dirty.stdout else [],
        "nproc": os.cpu_count(),
        "cpu_model": cpu,
        "mem_gb": mem_gb,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "loadavg_at_start": os.getloadavg(),
    }


# ------------------------------------------------------------------------------ CPU accounting


def proc_cpu_s(pid: int, *, reaped: bool = False) -> float | None:
    """user+system CPU seconds of one live process (None when it is gone); ``reaped`` adds
    its waited-for children's (the postmaster collects the CPU of backends that exited)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    ticks = int(fields[11]) + int(fields[12])
    if reaped:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / CLK_TCK


def children_of(ppid: int) -> list[int]:
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            text = Path(f"/proc/{entry.name}/stat").read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()
        if int(fields[1]) == ppid:
            found.append(int(entry.name))
    return found


def machine_busy_s() -> float:
    """CPU seconds all cores spent busy since boot (from /proc/stat)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / CLK_TCK


def self_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class CpuMeter:
    """CPU seconds used by named groups of processes between ``start()`` and ``stop()``."""

    groups: dict[str, list[int]]
    postmaster: int | None = None
    _start: dict[int, float] = field(default_factory=dict)
    _wall: float = 0.0
    _busy: float = 0.0
    _self: float = 0.0

    def _pids(self) -> dict[str, list[int]]:
        groups = dict(self.groups)
        if self.postmaster:
            groups["postgres"] = [self.postmaster, *children_of(self.postmaster)]
        return groups

    def start(self) -> None:
        self._wall = time.monotonic()
        self._busy = machine_busy_s()
        self._self = self_cpu_s()
        self._start = {}
        for pids in self._pids().values():
            for pid in pids:
                if (cpu := proc_cpu_s(pid, reaped=pid == self.postmaster)) is not None:
                    self._start[pid] = cpu

    def stop(self) -> dict[str, float]:
        out: dict[str, float] = {"wall_s": time.monotonic() - self._wall}
        for name, pids in self._pids().items():
            total = 0.0
            for pid in pids:
                if (cpu := proc_cpu_s(pid, reaped=pid == self.postmaster)) is not None:
                    total += cpu - self._start.get(pid, 0.0)
            out[name] = round(total, 3)
        out["bench_orchestrator"] = round(self_cpu_s() - self._self, 3)
        busy = machine_busy_s() - self._busy
        ours = sum(v for k, v in out.items() if k != "wall_s")
        out["machine_busy"] = round(busy, 3)
        # CPU used by processes that are not part of this benchmark (other people's work on a
        # shared machine): a run with a large figure here is disturbed.
        out["foreign"] = round(max(0.0, busy - ours), 3)
        return out


# ------------------------------------------------------------------------------ processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_line(proc: subprocess.Popen, timeout_s: float, match: str) -> str:
    """Read ``proc.stdout`` lines until one contains ``match`` (raises on timeout or exit)."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout_s
    fd = proc.stdout.fileno()
    buf = b""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            chunk = os.read(fd, 4096)
            if not chunk:
                raise RuntimeError(f"process {proc.args!r} exited (rc={proc.poll()})")
            buf += chunk
            for line in buf.decode(errors="replace").splitlines():
                if match in line:
                    return line
        elif proc.poll() is not None:
            raise RuntimeError(f"process {proc.args!r} exited (rc={proc.returncode})")
    raise TimeoutError(f"no line containing {match!r} from {proc.args!r} in {timeout_s}s")


def stop_process(proc: subprocess.Popen | None, timeout_s: float = 10.0) -> None:
    """SIGTERM the process we started (by its pid), SIGKILL if it does not go."""
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        proc.wait(5)


def _is_orphaned_child(pid: int, name: str) -> bool:
    """Whether ``pid`` is still a process whose command line starts with ``name``."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return cmdline.startswith(name.encode())


class Processes:
    """Every child started through it is stopped by ``close()`` (newest first).

    A child started with ``children_named`` (nginx: its master forks the workers) also has
    its own children of that name killed by pid after it stopped, should any survive it.
    """

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen] = []
        self._grandchildren: dict[int, str] = {}

    def start(
        self,
        args: list[str],
        *,
        env: dict[str, str] | None = None,
        stderr_path: Path | None = None,
        children_named: str | None = None,
    ) -> subprocess.Popen:
        stderr = open(stderr_path, "ab") if stderr_path else subprocess.DEVNULL  # noqa: SIM115
        try:
            proc = subprocess.Popen(
                args,
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=stderr,
                stdin=subprocess.DEVNULL,
            )
        finally:
            if stderr_path:
                stderr.close()
        self.procs.append(proc)
        if children_named:
            self._grandchildren[proc.pid] = children_named
        return proc

    def stop(self, proc: subprocess.Popen) -> None:
        name = self._grandchildren.pop(proc.pid, None)
        kids = children_of(proc.pid) if name and proc.poll() is None else []
        stop_process(proc)
        for pid in kids:
            deadline = time.monotonic() + 5
            while _is_orphaned_child(pid, name or "") and time.monotonic() < deadline:
                time.sleep(0.05)
            if _is_orphaned_child(pid, name or ""):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        if proc.stdout:
            proc.stdout.close()
        if proc in self.procs:
            self.procs.remove(proc)

    def close(self) -> None:
        for proc in reversed(list(self.procs)):
            self.stop(proc)


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNLATER_")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


# ------------------------------------------------------------------------------ the cluster


class Cluster:
    """A throwaway Postgres with pg_stat_statements loaded; one fresh database per run."""

    def __init__(self) -> None:
        self.pg: EmbeddedPostgres | None = None
        self._dbs = 0

    def start(self) -> None:
        self.pg = create_throwaway_cluster()
        # pg_stat_statements tells which statements the engine runs how often (small overhead).
        with open(self.pg.pg_dir / "postgresql.conf", "a", encoding="utf-8") as conf:
            conf.write(
                "\n# --- added by bench ---\n"
                "shared_preload_libraries = 'pg_stat_statements'\n"
                "pg_stat_statements.track = all\n"
            )
        self.pg.stop()
        self.pg.start()

    @property
    def dsn(self) -> str:
        assert self.pg is not None
        return self.pg.dsn

    @property
    def postmaster(self) -> int | None:
        return self.pg.server_pid() if self.pg else None

    def dsn_for(self, database: str) -> str:
        parts = urlsplit(self.dsn)
        return urlunsplit(parts._replace(path="/" + database))

    def conninfo(self) -> dict[str, str]:
        parts = urlsplit(self.dsn)
        return {
            "host": parts.hostname or "127.0.0.1",
            "port": str(parts.port),
            "user": parts.username or "",
            "password": parts.password or "",
        }

    def server_version(self) -> str:
        assert self.pg is not None and self.pg.bindir is not None
        out = subprocess.run(
            [str(self.pg.bindir / "postgres"), "--version"],
            capture_output=True,
            text=True,
            check=False,
        )
        return out.stdout.strip()

    async def new_database(self, prefix: str) -> str:
        self._dbs += 1
        name = f"{prefix}_{self._dbs}"
        conn = await asyncpg.connect(self.dsn)
        try:
            await conn.execute(f'create database "{name}"')
        finally:
            await conn.close()
        return self.dsn_for(name)

    def destroy(self) -> None:
        if self.pg is not None:
            self.pg.destroy()
            self.pg = None


@contextlib.asynccontextmanager
async def throwaway_run(args: Any) -> AsyncIterator[tuple[Cluster, dict[str, Any]]]:
    """A benchmark's run on its own throwaway cluster: the result starts with the start time,
    the machine, the arguments and the Postgres version, and ends with the elapsed seconds;
    the cluster is destroyed afterwards, whatever happened."""
    result: dict[str, Any] = {
        "started": datetime.now(UTC).isoformat(),
        "machine": machine_info(),
        "args": vars(args),
    }
    t0 = time.time()
    cluster = Cluster()
    try:
        log("starting throwaway Postgres cluster")
        cluster.start()
        result["postgres"] = cluster.server_version()
        yield cluster, result
    finally:
        cluster.destroy()
        result["elapsed_s"] = time.time() - t0


# ------------------------------------------------------------------------------ runlater CLI


@dataclass
class Org:
    id: str
    api_key: str


def _runlater(dsn: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run a ``runlater`` CLI command against ``dsn``; raise with its stderr if it fails."""
    out = subprocess.run(
        [PY, "-m", "runlater", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=clean_env(RUNLATER_DATABASE_URL=dsn),
        timeout=120,
    )
    if out.returncode:
        raise RuntimeError(f"runlater {args[0]} failed: {out.stderr[-2000:]}")
    return out


def migrate(dsn: str) -> None:
    _runlater(dsn, "migrate")


def bootstrap(dsn: str, org: str = "bench") -> Org:
    out = _runlater(dsn, "bootstrap", "--org", org, "--email", "e@x.test", "--tier", "pro")
    lines = out.stdout.strip().splitlines()
    match = re.search(r"\(id ([0-9a-f-]{36})", out.stdout)
    if not match:
        raise RuntimeError(f"unexpected bootstrap output: {out.stdout!r}")
    return Org(id=match[1], api_key=lines[-1].strip())


def start_serve(
    procs: Processes,
    dsn: str,
    *,
    max_workers: int,
    workdir: Path,
    name: str = "node1",
    extra_env: dict[str, str] | None = None,
    transport: str = "runlater",
) -> tuple[subprocess.Popen, int]:
    """A ``runlater serve`` process; ``transport="httpx"`` runs the baseline node of
    ``bench.httpx_node`` (httpx's default transport) instead."""
    port = free_port()
    env = clean_env(
        RUNLATER_DATABASE_URL=dsn,
        RUNLATER_ALLOW_PRIVATE_TARGETS="true",
        RUNLATER_HOST="127.0.0.1",
        RUNLATER_PORT=str(port),
        RUNLATER_MAX_WORKERS=str(max_workers),
        RUNLATER_NODE_NAME=name,
        # Rate limits off for the run (quality.md): 0 turns a limit off.
        RUNLATER_RATE_LIMIT_PER_KEY="0",
        RUNLATER_RATE_LIMIT_PER_IP="0",
        **(extra_env or {}),
    )
    proc = procs.start(
        [PY, "-m", "bench.httpx_node" if transport == "httpx" else "runlater", "serve"],
        env=env,
        stderr_path=workdir / f"serve-{name}.log",
    )
    read_line(proc, 60, "serving on")
    return proc, port


def start_sink(procs: Processes, log_path: Path) -> tuple[subprocess.Popen, int]:
    proc = procs.start([PY, "-m", "tests.helpers.sink", "--port", "0", "--log", str(log_path)])
    line = read_line(proc, 30, "PORT ")
    return proc, int(line.split()[1])


def start_bare_api(procs: Processes, mode: str, log_path: Path) -> tuple[subprocess.Popen, int]:
    """The API baseline server ``bench.bare_api --mode asgi|quart`` (no database)."""
    proc = procs.start([PY, "-m", "bench.bare_api", "--mode", mode], stderr_path=log_path)
    line = read_line(proc, 30, "PORT ")
    return proc, int(line.split()[1])


async def run_json_module(module: str, *args: str, timeout_s: float = 600) -> dict[str, Any]:
    """``python -m module args`` to its end, in the repo with a clean environment; the JSON
    object on the last line of its stdout."""
    done = await asyncio.to_thread(
        subprocess.run,
        [PY, "-m", module, *args],
        cwd=ROOT,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
    if done.returncode:
        raise RuntimeError(f"{module} failed: {done.stderr[-1500:]}")
    found: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return found


# ------------------------------------------------------------------------------ nginx sink

SINKS = ("python", "nginx")

NGINX_CONF = """\
# generated by bench/harness.py: a sink that answers 200 "ok" to everything
daemon off;
master_process on;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{
    worker_connections 4096;
}}
http {{
    access_log off;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    default_type text/plain;
    keepalive_requests 1000000;
    keepalive_timeout 75s;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            return 200 "ok";
        }}
    }}
}}
"""


def nginx_binary() -> str | None:
    """The nginx executable (``apt-get install nginx-light``), or None."""
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx",) if os.access(p, os.X_OK)), None
    )


@dataclass
class SinkProcess:
    """A running sink: ``python`` (tests.helpers.sink, logs every request with its arrival
    time, ~300 µs CPU per request) or ``nginx`` (answers 200 "ok", logs nothing, a few µs)."""

    kind: str
    proc: subprocess.Popen
    port: int
    log: SinkLog | None

    def pids(self) -> list[int]:
        """The processes whose CPU is the sink's (nginx: the master and its workers)."""
        if self.kind == "nginx":
            return [self.proc.pid, *children_of(self.proc.pid)]
        return [self.proc.pid]


def start_nginx(procs: Processes, prefix: Path) -> tuple[subprocess.Popen, int]:
    """nginx in the foreground on 127.0.0.1:<free port>, config and pid file in ``prefix``."""
    binary = nginx_binary()
    if binary is None:
        raise RuntimeError("nginx not found: apt-get install -y nginx-light (or use --sink python)")
    prefix.mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = prefix / "nginx.conf"
    conf.write_text(NGINX_CONF.format(prefix=prefix, port=port))
    proc = procs.start(
        [binary, "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log")],
        stderr_path=prefix / "nginx.stderr.log",
        children_named="nginx: worker",
    )
    deadline = time.monotonic() + 15
    while True:
        if proc.poll() is not None:
            err = (prefix / "nginx.stderr.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"nginx exited (rc={proc.returncode}): {err}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                pass
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nginx did not listen on 127.0.0.1:{port} in 15 s") from None
            time.sleep(0.05)
            continue
        if children_of(proc.pid):  # the worker that answers is up
            return proc, port
        time.sleep(0.05)


def start_sink_of(procs: Processes, kind: str, work: Path) -> SinkProcess:
    """A sink of ``kind`` for a run whose files live in ``work``."""
    if kind == "nginx":
        proc, port = start_nginx(procs, work / "nginx")
        return SinkProcess(kind, proc, port, None)
    if kind != "python":
        raise ValueError(f"unknown sink {kind!r}")
    proc, port = start_sink(procs, work / "sink.jsonl")
    return SinkProcess(kind, proc, port, SinkLog(work / "sink.jsonl"))


class SinkLog:
    """Reads the sink's JSON lines incrementally."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.partial = b""
        self.rows: list[dict[str, Any]] = []

    def poll(self) -> int:
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                data = fh.read()
        except FileNotFoundError:
            return len(self.rows)
        self.offset += len(data)
        data = self.partial + data
        lines = data.split(b"\n")
        self.partial = lines.pop()
        for line in lines:
            if line.strip():
                self.rows.append(json.loads(line))
        return len(self.rows)


def write_result(name: str, result: dict[str, Any], out: str | None) -> Path:
    """Write a run's JSON to ``out`` (default bench/results/NAME-<time>.json) and say where."""
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    path = Path(out or RESULTS / f"{name}-{stamp}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1))
    log(f"{name}: results in {path}")
    return path


KEEP_LOGS = False  # --keep-logs: keep the sinks' JSON lines (MBs per run)


@contextlib.contextmanager
def workdir(tag: str) -> Iterator[Path]:
    """bench/results/work/TAG: node logs, sink logs (deleted afterwards unless KEEP_LOGS)."""
    path = RESULTS / "work" / tag
    path.mkdir(parents=True, exist_ok=True)
    for old in [*path.glob("*.jsonl"), *path.glob("*.log")]:  # a previous invocation's
        old.unlink(missing_ok=True)
    try:
        yield path
    finally:
        if not KEEP_LOGS:
            for jsonl in path.glob("*.jsonl"):
                jsonl.unlink(missing_ok=True)


# ------------------------------------------------------------------------------ pgbench


@dataclass
class PgbenchRun:
    """What one pgbench invocation did: its output, wall time and Postgres CPU."""

    stdout: str
    elapsed_s: float
    cpu: dict[str, float]

    def tps(self) -> float | None:
        found = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", self.stdout)
        return float(found[1]) if found else None

    def latency_avg_ms(self) -> float | None:
        found = re.search(r"latency average = ([0-9.]+) ms", self.stdout)
        return float(found[1]) if found else None


def run_pgbench(
    cluster: Cluster,
    dsn: str,
    script: Path,
    *,
    clients: int,
    transactions: int | None = None,
    duration_s: float | None = None,
) -> PgbenchRun:
    """pgbench with ``script`` against ``dsn`` (prepared statements, ``clients`` clients on up to
    2 threads), for ``transactions`` per client or ``duration_s``; the output is kept beside
    the script. Raises with pgbench's error when it fails."""
    info = cluster.conninfo()
    cmd = ["pgbench", "-n", "-M", "prepared", "-h", info["host"], "-p", info["port"]]
    cmd += ["-U", info["user"], "-c", str(clients), "-j", str(min(clients, 2))]
    if transactions is not None:
        cmd += ["-t", str(transactions)]
    else:
        assert duration_s is not None
        cmd += ["-T", str(round(duration_s))]
    cmd += ["-f", str(script), dsn.rsplit("/", 1)[1]]
    meter = CpuMeter({}, postmaster=cluster.postmaster)
    meter.start()
    started = time.time()
    out = subprocess.run(
        cmd,
        env=clean_env(PGPASSWORD=info["password"]),
        capture_output=True,
        text=True,
        timeout=(duration_s or 480) + 120,
    )
    elapsed = time.time() - started
    cpu = meter.stop()
    (script.parent / "pgbench.out").write_text(out.stdout + out.stderr)
    if out.returncode:
        raise RuntimeError(f"pgbench failed: {out.stderr[-1500:]}")
    return PgbenchRun(out.stdout, elapsed, cpu)


# ------------------------------------------------------------------------------ SQL helpers

INSERT_TASKS = """
with r as (
    select d from unnest($3::float8[]) as u(d)
), t as (
    insert into tasks (organization_id, name, url, method, headers, schedule_type, timezone,
                       scheduled_at, timeout_ms, retry_attempts, enabled)
    select $1::uuid, 'bench', $2::text, 'POST',
           jsonb_build_object('X-Bench-Due', r.d::text, 'X-Bench-Run', $4::text),
           'once', 'UTC', to_timestamp(r.d), 30000, 0, true
    from r
    returning id, organization_id, scheduled_at, host
)
insert into executions (organization_id, task_id, source, priority, scheduled_for, host)
select t.organization_id, t.id, 'schedule', execution_priority('pro', null), t.scheduled_at,
       t.host
from t
"""


async def insert_tasks(
    conn: asyncpg.Connection,
    org_id: str,
    url: str,
    dues: Sequence[float],
    tag: str,
    *,
    notify: bool = True,
) -> None:
    """One-time tasks + their pending executions, one per due time (unix s), in one statement
    (the same rows ``insert_task`` writes), then one NOTIFY, committed together."""
    async with conn.transaction():
        await conn.execute(INSERT_TASKS, org_id, url, list(dues), tag)
        if notify:
            await conn.execute("select pg_notify('runlater_executions', '')")


async def status_counts(conn: asyncpg.Connection) -> dict[str, int]:
    rows = await conn.fetch("select status, count(*) as n from executions group by status")
    return {r["status"]: r["n"] for r in rows}


async def pg_counters(conn: asyncpg.Connection) -> dict[str, int]:
    row = await conn.fetchrow(
        "select xact_commit, xact_rollback, tup_updated, tup_inserted, tup_fetched "
        "from pg_stat_database where datname = current_database()"
    )
    return dict(row)


async def reset_statements(conn: asyncpg.Connection) -> None:
    await conn.execute("create extension if not exists pg_stat_statements")
    await conn.execute("select pg_stat_statements_reset()")


async def top_statements(conn: asyncpg.Connection, limit: int = 8) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        """
        select regexp_replace(left(query, 160), '\\s+', ' ', 'g') as query, calls,
               round(total_exec_time::numeric, 1) as total_ms,
               round((total_exec_time / greatest(calls, 1))::numeric, 3) as mean_ms, rows
        from pg_stat_statements
        where dbid = (select oid from pg_database where datname = current_database())
        order by total_exec_time desc
        limit $1
        """,
        limit,
    )
    return [{k: (float(v) if k.endswith("_ms") else v) for k, v in dict(r).items()} for r in rows]


async def statement_stats(
    conn: asyncpg.Connection, patterns: Sequence[str]
) -> dict[str, float] | None:
    """Calls, rows and execution time (ms) summed over the statements matching every one of
    ``patterns`` (ILIKE) in this database since the last reset; None when none ran."""
    row = await conn.fetchrow(
        """
        select sum(calls)::float8 as calls, sum(rows)::float8 as rows,
               sum(total_exec_time)::float8 as total_ms
        from pg_stat_statements
        where dbid = (select oid from pg_database where datname = current_database())
          and query ilike all($1::text[])
        """,
        list(patterns),
    )
    if row is None or not row["calls"]:
        return None
    return {
        "calls": row["calls"],
        "rows": row["rows"],
        "total_ms": round(row["total_ms"], 1),
        "mean_ms": round(row["total_ms"] / row["calls"], 3),
        "rows_per_call": round(row["rows"] / row["calls"], 1),
        "exec_us_per_row": round(row["total_ms"] * 1000 / max(row["rows"], 1), 1),
    }
