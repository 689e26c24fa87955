"""Throughput: drain N already-due one-time executions through real ``runlater serve`` nodes.

Per run: a fresh database, ``runlater bootstrap`` (org, tier pro), a sink process, 1..k
``runlater serve`` processes. A warm-up batch is drained first (connections, caches); then N
due tasks + executions are inserted in one transaction that also NOTIFYs, and the clock runs
from its commit until the sink has seen all N requests (``delivered``) and until the database
shows all N executions as ``success`` (``recorded`` — the end-to-end figure).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import asyncpg

from bench import harness, profiling
from bench.harness import Cluster, CpuMeter, Processes, SinkLog

WARMUP = 300
IDLE_S = 3.0


async def _wait_sink(sink: SinkLog, count: int, timeout_s: float) -> float | None:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if sink.poll() >= count:
            return time.time()
        await asyncio.sleep(0.02)
    return None


async def _wait_recorded(
    conn: asyncpg.Connection, count: int, timeout_s: float, interval_s: float = 0.01
) -> float | None:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        done = await conn.fetchval(
            "select count(*) from executions where status not in ('pending', 'running')"
        )
        if done >= count:
            return time.time()
        await asyncio.sleep(interval_s)
    return None


async def run_once(
    cluster: Cluster,
    *,
    n: int,
    max_workers: int,
    nodes: int,
    tag: str,
    profile_dir: Path | None = None,
    timeout_s: float = 300,
) -> dict[str, Any]:
    dsn = await cluster.new_database("tput")
    org = harness.bootstrap(dsn)
    procs = Processes()
    recorder: profiling.Recorder | None = None
    with harness.workdir(tag) as work:
        try:
            sink_proc, sink_port = harness.start_sink(procs, work / "sink.jsonl")
            url = f"http://127.0.0.1:{sink_port}/tput"
            serves = [
                harness.start_serve(
                    procs, dsn, max_workers=max_workers, workdir=work, name=f"node{i + 1}"
                )[0]
                for i in range(nodes)
            ]
            sink = SinkLog(work / "sink.jsonl")
            # An idle node's own CPU use (timers, polling, leader lease), before any work.
            idle = CpuMeter({"serve": [serves[0].pid]})
            idle.start()
            await asyncio.sleep(IDLE_S)
            idle_cpu = idle.stop()
            conn = await asyncpg.connect(dsn)
            try:
                await harness.insert_tasks(conn, org.id, url, [time.time() - 1] * WARMUP, "warmup")
                if await _wait_recorded(conn, WARMUP, 60) is None:
                    raise RuntimeError("warm-up batch was not delivered within 60 s")
                await _wait_sink(sink, WARMUP, 10)
                await harness.reset_statements(conn)
                before = await harness.pg_counters(conn)
                meter = CpuMeter(
                    {"serve": [p.pid for p in serves], "sink": [sink_proc.pid]},
                    postmaster=cluster.postmaster,
                )
                if profile_dir is not None and profiling.available():
                    recorder = profiling.Recorder(
                        serves[0].pid, profile_dir, f"profile-throughput-w{max_workers}"
                    )
                    recorder.start()
                    await asyncio.sleep(1.0)  # let py-spy attach before the clock starts
                meter.start()
                due = time.time() - 1
                # One transaction: rows and NOTIFY become visible together at commit.
                await conn.execute("begin")
                await conn.execute(harness.INSERT_TASKS, org.id, url, [due] * n, tag)
                await conn.execute("select pg_notify('runlater_executions', '')")
                t_insert = time.time()
                await conn.execute("commit")
                t0 = time.time()
                t_sink = await _wait_sink(sink, WARMUP + n, timeout_s)
                t_rec = await _wait_recorded(conn, WARMUP + n, timeout_s)
                cpu = meter.stop()
                if recorder is not None:
                    recorder.stop()
                after = await harness.pg_counters(conn)
                statements = await harness.top_statements(conn)
                counts = await harness.status_counts(conn)
            finally:
                await conn.close()
        finally:
            if recorder is not None:
                recorder.stop()
            procs.close()
    rows = [r for r in sink.rows if r["headers"].get("x-bench-run") == tag]
    arrivals = sorted(r["at"] for r in rows)
    ids = {r["headers"].get("x-runlater-execution-id") for r in rows}
    result: dict[str, Any] = {
        "n": n,
        "max_workers": max_workers,
        "nodes": nodes,
        "insert_commit_s": t0 - t_insert,
        "delivered": len(rows),
        "duplicates": len(rows) - len(ids),
        "status_counts": counts,
        "first_arrival_ms": (arrivals[0] - t0) * 1000 if arrivals else None,
        "delivered_s": (t_sink - t0) if t_sink else None,
        "recorded_s": (t_rec - t0) if t_rec else None,
        "deliveries_per_s": n / (t_rec - t0) if t_rec else None,
        "sink_rate_per_s": n / (arrivals[-1] - t0) if arrivals and t_sink else None,
        "idle_serve_cpu_fraction": idle_cpu["serve"] / idle_cpu["wall_s"],
        "cpu_s": cpu,
        "cpu_us_per_delivery": {k: round(v / n * 1e6) for k, v in cpu.items() if k != "wall_s"},
        "pg_xacts_per_delivery": (after["xact_commit"] - before["xact_commit"]) / n,
        "top_statements": statements,
    }
    if recorder is not None:
        result["profile"] = {
            "svg": str(recorder.svg),
            "collapsed": str(recorder.raw),
            **profiling.summarize(recorder.raw),
        }
    return result


# ------------------------------------------------------------------------------ baselines


async def http_baseline(mode: str, *, count: int, concurrency: int, tag: str) -> dict[str, Any]:
    """``bench.httploop`` in its own process against a fresh sink process."""
    procs = Processes()
    with harness.workdir(tag) as work:
        try:
            sink_proc, port = harness.start_sink(procs, work / "sink.jsonl")
            meter = CpuMeter({"sink": [sink_proc.pid]})
            meter.start()
            loop = procs.start(
                [
                    harness.PY,
                    "-m",
                    "bench.httploop",
                    "--url",
                    f"http://127.0.0.1:{port}/baseline",
                    "--count",
                    str(count),
                    "--concurrency",
                    str(concurrency),
                    "--mode",
                    mode,
                ]
            )
            meter.groups["client"] = [loop.pid]
            line = await asyncio.to_thread(harness.read_line, loop, 600, '"mode"')
            cpu = meter.stop()
            loop.wait(30)
        finally:
            procs.close()
    import json

    result = json.loads(line)
    result["sink_cpu_us_per_req"] = round(cpu["sink"] / max(result["ok"], 1) * 1e6)
    result["cpu_s"] = cpu
    return result
