"""Lateness at a fixed creation rate: request arrival at the sink - the execution's due time.

Per run: a fresh database, bootstrap, a sink process and one ``runlater serve``. Tasks due
``lead`` seconds after they are created arrive at ``rate``/s for ``duration`` s:

- ``api`` mode: ``bench.gen_api`` (its own process) POSTs them to ``/api/v1/tasks`` with
  ``run_at``, so the node serves the API and delivers at the same time (the real workload);
- ``sql`` mode: the orchestrator inserts them in 10 ms batches (same rows as ``insert_task``,
  one NOTIFY per batch) — the engine alone, for when the API cannot create at that rate.

Every task carries its due time in ``X-Bench-Due``; the sink logs it with the arrival time.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import asyncpg

from bench import harness, profiling
from bench.harness import Cluster, CpuMeter, Processes, SinkLog, percentile, summary
from bench.throughput import WARMUP, _wait_recorded, _wait_sink

TICK_S = 0.01


async def _insert_paced(
    conn: asyncpg.Connection,
    org_id: str,
    url: str,
    *,
    rate: float,
    duration: float,
    lead: float,
    tag: str,
) -> dict[str, Any]:
    total = round(rate * duration)
    t0 = time.time()
    created = 0
    lags: list[float] = []
    while created < total:
        now = time.time()
        target = min(total, int((now - t0) * rate) + 1)
        if target > created:
            dues = [t0 + i / rate + lead for i in range(created, target)]
            lags.append(now - (t0 + created / rate))
            await harness.insert_tasks(conn, org_id, url, dues, tag)
            created = target
        next_at = t0 + created / rate
        await asyncio.sleep(max(0.0, min(TICK_S, next_at - time.time())))
    elapsed = time.time() - t0
    return {
        "target_rate": rate,
        "requested": total,
        "created": created,
        "elapsed_s": elapsed,
        "achieved_rate": created / elapsed,
        "insert_lag_max_ms": max(lags) * 1000,
    }


async def run_once(
    cluster: Cluster,
    *,
    rate: float,
    duration: float,
    lead: float,
    mode: str,
    max_workers: int,
    tag: str,
    transport: str = "runlater",
    profile_dir: Path | None = None,
) -> dict[str, Any]:
    """One lateness run; ``transport`` is the node's outbound transport (``httpx``: the
    baseline node of ``bench.httpx_node``). The sink is always the Python one: its log has
    each request's arrival time."""
    dsn = await cluster.new_database("late")
    org = harness.bootstrap(dsn)
    procs = Processes()
    recorder: profiling.Recorder | None = None
    with harness.workdir(tag) as work:
        try:
            sink_proc, sink_port = harness.start_sink(procs, work / "sink.jsonl")
            url = f"http://127.0.0.1:{sink_port}/late"
            serve, api_port = harness.start_serve(
                procs,
                dsn,
                max_workers=max_workers,
                workdir=work,
                transport=transport,
            )
            sink = SinkLog(work / "sink.jsonl")
            conn = await asyncpg.connect(dsn)
            try:
                await harness.insert_tasks(conn, org.id, url, [time.time() - 1] * WARMUP, "warmup")
                if await _wait_recorded(conn, WARMUP, 60) is None:
                    raise RuntimeError("warm-up batch was not delivered within 60 s")
                await _wait_sink(sink, WARMUP, 10)
                await harness.reset_statements(conn)
                meter = CpuMeter(
                    {"serve": [serve.pid], "sink": [sink_proc.pid]}, postmaster=cluster.postmaster
                )
                if profile_dir is not None and profiling.available():
                    recorder = profiling.Recorder(
                        serve.pid, profile_dir, f"profile-lateness-{mode}-{int(rate)}-{transport}"
                    )
                    recorder.start()
                    await asyncio.sleep(1.0)
                meter.start()
                if mode == "api":
                    gen = procs.start(
                        [
                            harness.PY,
                            "-m",
                            "bench.gen_api",
                            "--api",
                            f"http://127.0.0.1:{api_port}",
                            "--key",
                            org.api_key,
                            "--sink",
                            url,
                            "--rate",
                            str(rate),
                            "--duration",
                            str(duration),
                            "--lead",
                            str(lead),
                            "--tag",
                            tag,
                        ]
                    )
                    meter.groups["generator"] = [gen.pid]
                    line = await asyncio.to_thread(
                        harness.read_line, gen, duration + 120, '"target_rate"'
                    )
                    created = json.loads(line)
                else:
                    created = await _insert_paced(
                        conn, org.id, url, rate=rate, duration=duration, lead=lead, tag=tag
                    )
                expected = WARMUP + created["created"]
                t_sink = await _wait_sink(sink, expected, lead + 120)
                await _wait_recorded(conn, expected, 60, interval_s=0.1)
                cpu = meter.stop()
                if recorder is not None:
                    recorder.stop()
                statements = await harness.top_statements(conn)
                counts = await harness.status_counts(conn)
            finally:
                await conn.close()
        finally:
            if recorder is not None:
                recorder.stop()
            procs.close()
    rows = [r for r in sink.rows if r["headers"].get("x-bench-run") == tag]
    late_ms = [(r["at"] - float(r["headers"]["x-bench-due"])) * 1000 for r in rows]
    # Lateness over the run, per second of due time: shows transients a percentile hides.
    timeline: dict[int, list[float]] = {}
    if rows:
        first_due = min(float(r["headers"]["x-bench-due"]) for r in rows)
        for r, late in zip(rows, late_ms, strict=True):
            second = int(float(r["headers"]["x-bench-due"]) - first_due)
            timeline.setdefault(second, []).append(late)
    ids = {r["headers"].get("x-runlater-execution-id") for r in rows}
    n = max(len(rows), 1)
    result: dict[str, Any] = {
        "mode": mode,
        "transport": transport,
        "sink": "python",
        "rate": rate,
        "duration_s": duration,
        "lead_s": lead,
        "max_workers": max_workers,
        "creation": created,
        "delivered": len(rows),
        "all_delivered": t_sink is not None,
        "duplicates": len(rows) - len(ids),
        "early": sum(1 for v in late_ms if v < 0),
        "status_counts": counts,
        "lateness_ms": summary(late_ms),
        "timeline": [
            {
                "second": sec,
                "n": len(v),
                "p50_ms": round(percentile(v, 50) or 0, 1),
                "max_ms": round(max(v), 1),
            }
            for sec, v in sorted(timeline.items())
        ],
        "cpu_s": cpu,
        "cpu_us_per_task": {k: round(v / n * 1e6) for k, v in cpu.items() if k != "wall_s"},
        "top_statements": statements,
    }
    if recorder is not None:
        result["profile"] = {
            "svg": str(recorder.svg),
            "collapsed": str(recorder.raw),
            **profiling.summarize(recorder.raw),
        }
    return result


def rate_ok(result: dict[str, Any], fraction: float = 0.9) -> bool:
    creation = result["creation"]
    return (creation.get("achieved_rate") or 0) >= fraction * creation["target_rate"] and creation[
        "created"
    ] >= fraction * creation["requested"]
