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
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from bench import harness, profiling
from bench.harness import Cluster, CpuMeter, Processes, SinkLog

WARMUP = 300
IDLE_S = 2.0


@dataclass
class Attached:
    """What a caller started beside the nodes of a run (``bench.live``: websocket clients):
    its processes' CPU is metered as ``attached``; ``finish()`` (called after the clock stopped,
    before the run's processes are stopped) returns what it saw, kept as the result's
    ``attached``."""

    pids: list[int]
    finish: Callable[[], Awaitable[dict[str, Any]]]


# Called once the nodes serve, before the warm-up batch: (node ports, org, the run's
# Processes — so whatever it starts is stopped with the run — and the run's work dir).
Attach = Callable[[list[int], harness.Org, Processes, Path], Awaitable[Attached]]


async def _wait_sink(sink: SinkLog, count: int, timeout_s: float) -> float | None:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if sink.poll() >= count:
            return time.time()
        await asyncio.sleep(0.02)
    return None


# Whether any execution is still open, through the partial indexes on pending and running rows:
# each probe stops at the first live row (a count of finished rows would scan the whole table
# 50 times a second and bill Postgres for the benchmark's own polling).
OPEN_EXECUTIONS = """
select exists (select 1 from executions where status = 'pending')
    or exists (select 1 from executions where status = 'running')
"""
# The engine's claim statement (engine.sql claim_executions), found in pg_stat_statements.
CLAIM_PATTERNS = ("%skip locked%", "%set status = 'running'%")
# --claim-index: an index matching the claim's "order by priority, scheduled_for" over pending
# rows, so a claim reads ~batch rows instead of sorting the whole backlog (an experiment: not in
# runlater's migrations).
CLAIM_INDEX_SQL = (
    "create index bench_claim_order_idx on executions (priority, scheduled_for) "
    "where status = 'pending'"
)


async def _wait_recorded(
    conn: asyncpg.Connection, count: int, timeout_s: float, interval_s: float = 0.02
) -> float | None:
    """Wait until no execution is open and at least ``count`` exist (all inserted rows are
    committed before the wait starts); the time when that was first seen."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if not await conn.fetchval(OPEN_EXECUTIONS):
            seen = time.time()
            if await conn.fetchval("select count(*) from executions") >= count:
                return seen
        await asyncio.sleep(interval_s)
    return None


async def run_once(
    cluster: Cluster,
    *,
    n: int,
    max_workers: int,
    nodes: int,
    tag: str,
    transport: str = "runlater",
    sink_kind: str = "python",
    profile_dir: Path | None = None,
    timeout_s: float = 300,
    extra_sql: str | None = None,
    extra_env: dict[str, str] | None = None,
    attach: Attach | None = None,
) -> dict[str, Any]:
    """One drain of ``n`` due executions. ``transport`` is the node's outbound transport
    (``runlater``, or ``httpx``: the baseline node of ``bench.httpx_node``); ``sink_kind``
    ``python`` (logs each request: arrival times, duplicates) or ``nginx`` (logs nothing:
    deliveries are counted in the database only). ``attach`` starts something beside the
    nodes for the whole run (see ``Attach``)."""
    dsn = await cluster.new_database("tput")
    org = harness.bootstrap(dsn)
    if extra_sql:  # an experiment on the schema (--claim-index), never part of the defaults
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(extra_sql)
        finally:
            await conn.close()
    procs = Processes()
    recorder: profiling.Recorder | None = None
    with harness.workdir(tag) as work:
        try:
            target = harness.start_sink_of(procs, sink_kind, work)
            url = f"http://127.0.0.1:{target.port}/tput"
            started = [
                harness.start_serve(
                    procs,
                    dsn,
                    max_workers=max_workers,
                    workdir=work,
                    name=f"node{i + 1}",
                    extra_env=extra_env,
                    transport=transport,
                )
                for i in range(nodes)
            ]
            serves = [proc for proc, _ in started]
            attached = (
                await attach([port for _, port in started], org, procs, work) if attach else None
            )
            sink = target.log
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
                if sink is not None:
                    await _wait_sink(sink, WARMUP, 10)
                await harness.reset_statements(conn)
                before = await harness.pg_counters(conn)
                meter = CpuMeter(
                    {"serve": [p.pid for p in serves], "sink": target.pids()},
                    postmaster=cluster.postmaster,
                )
                if attached is not None:
                    meter.groups["attached"] = attached.pids
                if profile_dir is not None and profiling.available():
                    recorder = profiling.Recorder(
                        serves[0].pid,
                        profile_dir,
                        f"profile-throughput-{transport}-{sink_kind}-w{max_workers}",
                    )
                    recorder.start()
                    await asyncio.sleep(1.0)  # let py-spy attach before the clock starts
                meter.start()
                # Postgres CPU of the insert itself (before the commit nothing is visible to
                # the node): measured apart and not charged to the deliveries.
                insert_meter = CpuMeter({}, postmaster=cluster.postmaster)
                insert_meter.start()
                due = time.time() - 1
                # One transaction: rows and NOTIFY become visible together at commit.
                await conn.execute("begin")
                await conn.execute(harness.INSERT_TASKS, org.id, url, [due] * n, tag)
                await conn.execute("select pg_notify('runlater_executions', '')")
                t_insert = time.time()
                await conn.execute("commit")
                t0 = time.time()
                insert_cpu = insert_meter.stop()
                t_sink = await _wait_sink(sink, WARMUP + n, timeout_s) if sink else None
                t_rec = await _wait_recorded(conn, WARMUP + n, timeout_s)
                cpu = meter.stop()
                if recorder is not None:
                    recorder.stop()
                after = await harness.pg_counters(conn)
                statements = await harness.top_statements(conn)
                claim = await harness.statement_stats(conn, CLAIM_PATTERNS)
                counts = await harness.status_counts(conn)
                attached_result = await attached.finish() if attached is not None else None
            finally:
                await conn.close()
        finally:
            if recorder is not None:
                recorder.stop()
            procs.close()
    rows = [r for r in sink.rows if r["headers"].get("x-bench-run") == tag] if sink else []
    arrivals = sorted(r["at"] for r in rows)
    ids = {r["headers"].get("x-runlater-execution-id") for r in rows}
    result: dict[str, Any] = {
        "n": n,
        "max_workers": max_workers,
        "nodes": nodes,
        "transport": transport,
        "sink": sink_kind,
        "extra_sql": extra_sql,
        "extra_env": extra_env or {},
        "insert_commit_s": t0 - t_insert,
        # nginx logs nothing: what the sink saw is unknown, the database has every outcome.
        "delivered": len(rows) if sink else None,
        "duplicates": len(rows) - len(ids) if sink else None,
        "all_success": counts.get("success", 0) == WARMUP + n,
        "status_counts": counts,
        "first_arrival_ms": (arrivals[0] - t0) * 1000 if arrivals else None,
        "delivered_s": (t_sink - t0) if t_sink else None,
        "recorded_s": (t_rec - t0) if t_rec else None,
        "deliveries_per_s": n / (t_rec - t0) if t_rec else None,
        "sink_rate_per_s": n / (arrivals[-1] - t0) if arrivals and t_sink else None,
        "idle_serve_cpu_fraction": idle_cpu["serve"] / idle_cpu["wall_s"],
        "cpu_s": {**cpu, "postgres_insert": insert_cpu["postgres"]},
        # postgres: all backends from the commit on (the insert's CPU is postgres_insert); it
        # includes the orchestrator's poll for open executions (pg_stat_statements: ~4 %).
        "cpu_us_per_delivery": {
            **{k: round(v / n * 1e6) for k, v in cpu.items() if k != "wall_s"},
            "postgres": round((cpu["postgres"] - insert_cpu["postgres"]) / n * 1e6),
            "postgres_insert": round(insert_cpu["postgres"] / n * 1e6),
        },
        "pg_xacts_per_delivery": (after["xact_commit"] - before["xact_commit"]) / n,
        # One node claims serially and its workers mostly idle while a claim runs, so the claim's
        # execution time per claimed row adds to the node's CPU per delivery.
        "claim": claim,
        "node_busy_cores": cpu["serve"] / cpu["wall_s"] / nodes if cpu["wall_s"] else None,
        "top_statements": statements,
    }
    if attached_result is not None:
        result["attached"] = attached_result
    if recorder is not None:
        result["profile"] = {
            "svg": str(recorder.svg),
            "collapsed": str(recorder.raw),
            **profiling.summarize(recorder.raw),
        }
    return result


# ------------------------------------------------------------------------------ baselines


async def http_baseline(
    mode: str, *, count: int, concurrency: int, tag: str, sink_kind: str = "python"
) -> dict[str, Any]:
    """``bench.httploop`` in its own process against a fresh sink process."""
    procs = Processes()
    with harness.workdir(tag) as work:
        try:
            target = harness.start_sink_of(procs, sink_kind, work)
            port = target.port
            meter = CpuMeter({"sink": target.pids()})
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
    result["sink"] = sink_kind
    result["sink_cpu_us_per_req"] = round(cpu["sink"] / max(result["ok"], 1) * 1e6)
    result["cpu_s"] = cpu
    return result
