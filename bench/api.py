"""API throughput: ``POST /api/v1/tasks`` (one-time task) through a real ``runlater serve``.

Per run: a fresh database, ``runlater bootstrap``, one node (rate limits off, as in every
benchmark: ``RUNLATER_RATE_LIMIT_PER_KEY/_PER_IP=0``), and ``bench.api_load`` in ``clients``
processes with ``connections`` keep-alive connections in all, closed loop, for ``duration`` s
after a warm-up. The tasks are due in a day, so the node serves the API only (no deliveries during
the run). Afterwards the database must hold one task, one execution and one audit entry per
accepted request (the audit log may not lose entries of committed changes).

Baselines in the same invocation, same load generator and connections:
- ``bare-asgi``: a bare ASGI callable on the node's hypercorn config (``bench.bare_api``) —
  the server's ceiling on this machine;
- ``bare-quart``: a quart-trio route that parses the JSON and answers 202, no database — the
  web framework's ceiling;
- ``pgbench``: the statements one creation runs (``insert_task`` and the audit insert) in one
  transaction per task, ``clients`` pgbench clients — the database's ceiling.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from functools import partial
from pathlib import Path
from typing import Any

import asyncpg

from bench import harness, profiling
from bench.api_load import DEFAULT_BODY
from bench.harness import Cluster, CpuMeter, Processes, percentile
from runlater.store.queries import Q

BARE_MODES = ("bare-asgi", "bare-quart")


def _load_args(url: str, key: str, connections: int, duration: float, warmup: float) -> list[str]:
    return [
        harness.PY,
        "-m",
        "bench.api_load",
        "--url",
        url,
        "--key",
        key,
        "--connections",
        str(connections),
        "--duration",
        str(duration),
        "--warmup",
        str(warmup),
    ]


async def _drive(
    procs: Processes,
    meter: CpuMeter,
    url: str,
    key: str,
    *,
    connections: int,
    clients: int,
    duration: float,
    warmup: float,
    idempotency: bool = False,
    paths: list[str] | None = None,
) -> dict[str, Any]:
    """Run the load generators; CPU is metered over their whole run (warm-up included) and
    charged per request answered in that time (``answered``). ``paths``: connection i of all
    of them posts to ``paths[i % len(paths)]``."""
    per = [connections // clients + (1 if i < connections % clients else 0) for i in range(clients)]
    meter.start()
    gens = []
    for n, count in enumerate(per):
        args = _load_args(url, key, count, duration, warmup)
        if idempotency:
            args.append("--idempotency")
        if paths:
            args += ["--paths", ",".join(paths), "--offset", str(sum(per[:n]))]
        gens.append(procs.start(args))
    # The result line is large (every latency): read each generator's output to its exit.
    outputs = [
        (await asyncio.to_thread(g.communicate, timeout=duration + warmup + 60))[0] for g in gens
    ]
    cpu = meter.stop()
    results = [json.loads(out.decode().strip().splitlines()[-1]) for out in outputs]
    # The generators have exited: their CPU is what they report themselves.
    cpu["client"] = round(sum(r["client_cpu_s"] for r in results), 3)
    latencies = [v for r in results for v in r["latencies_ms"]]
    statuses: dict[str, int] = {}
    errors: dict[str, int] = {}
    for r in results:
        for k, v in r["statuses"].items():
            statuses[k] = statuses.get(k, 0) + v
        for k, v in r["errors"].items():
            errors[k] = errors.get(k, 0) + v
    ok = sum(r["ok"] for r in results)
    # Everything answered while the meter ran (the warm-up too): what the CPU was spent on.
    answered = len(latencies) + round(warmup * ok / duration)
    return {
        "connections": connections,
        "clients": clients,
        "duration_s": duration,
        "warmup_s": warmup,
        "idempotency": idempotency,
        "ok": ok,
        "rps": ok / duration,
        "statuses": statuses,
        "errors": errors,
        "sample_error_body": next(
            (r["sample_error_body"] for r in results if r["sample_error_body"]), None
        ),
        "latency_ms": {
            "p50": percentile(latencies, 50),
            "p95": percentile(latencies, 95),
            "p99": percentile(latencies, 99),
            "max": max(latencies) if latencies else None,
        },
        "cpu_s": cpu,
        "cpu_us_per_request": {
            k: round(v / max(answered, 1) * 1e6) for k, v in cpu.items() if k != "wall_s"
        },
        "busy_cores": {
            k: round(v / max(cpu["wall_s"], 1e-9), 2) for k, v in cpu.items() if k != "wall_s"
        },
    }


async def run_once(
    cluster: Cluster,
    *,
    connections: int,
    clients: int,
    duration: float,
    warmup: float,
    tag: str,
    idempotency: bool = False,
    profile_dir: Path | None = None,
) -> dict[str, Any]:
    dsn = await cluster.new_database("api")
    org = harness.bootstrap(dsn)
    procs = Processes()
    recorder: profiling.Recorder | None = None
    with harness.workdir(tag) as work:
        try:
            serve, port = harness.start_serve(
                procs,
                dsn,
                max_workers=10,
                workdir=work,
            )
            conn = await asyncpg.connect(dsn)
            try:
                await harness.reset_statements(conn)
                before = await harness.pg_counters(conn)
                meter = CpuMeter({"serve": [serve.pid]}, postmaster=cluster.postmaster)
                if profile_dir is not None and profiling.available():
                    name = "profile-api" + ("-idempotency" if idempotency else "")
                    recorder = profiling.Recorder(serve.pid, profile_dir, name)
                    recorder.start()
                    await asyncio.sleep(1.0)  # let py-spy attach before the load starts
                result = await _drive(
                    procs,
                    meter,
                    f"http://127.0.0.1:{port}/api/v1/tasks",
                    org.api_key,
                    connections=connections,
                    clients=clients,
                    duration=duration,
                    warmup=warmup,
                    idempotency=idempotency,
                )
                if recorder is not None:
                    recorder.stop()
                # Let buffered writes land, then compare: one task, one execution and one
                # audit entry per accepted request.
                harness.stop_process(serve)
                after = await harness.pg_counters(conn)
                counts = dict(
                    await conn.fetchrow(
                        "select (select count(*) from tasks) as tasks,"
                        " (select count(*) from executions) as executions,"
                        " (select count(*) from audit_log) as audit_entries,"
                        " (select count(*) from idempotency_keys) as idempotency_keys"
                    )
                )
                statements = await harness.top_statements(conn)
            finally:
                await conn.close()
        finally:
            if recorder is not None:
                recorder.stop()
            procs.close()
    answered = sum(int(v) for k, v in result["statuses"].items() if k.startswith("2"))
    result.update(
        mode="runlater",
        counts=counts,
        # Every 202 is a task with its execution and its audit entry (warm-up requests too, so
        # the database holds at least as many as were counted in the window).
        consistent=counts["tasks"] == counts["executions"] == counts["audit_entries"]
        and counts["tasks"] >= answered,
        pg_xacts_per_request=(after["xact_commit"] - before["xact_commit"])
        / max(counts["tasks"], 1),
        top_statements=statements,
    )
    if recorder is not None:
        result["profile"] = {
            "svg": str(recorder.svg),
            "collapsed": str(recorder.raw),
            **profiling.summarize(recorder.raw),
        }
    return result


async def bare_once(
    mode: str, *, connections: int, clients: int, duration: float, warmup: float, tag: str
) -> dict[str, Any]:
    """One baseline run against ``bench.bare_api`` (``bare-asgi`` or ``bare-quart``)."""
    procs = Processes()
    with harness.workdir(tag) as work:
        try:
            server, port = harness.start_bare_api(
                procs, mode.removeprefix("bare-"), work / "bare.log"
            )
            meter = CpuMeter({"serve": [server.pid]})
            result = await _drive(
                procs,
                meter,
                f"http://127.0.0.1:{port}/api/v1/tasks",
                "",
                connections=connections,
                clients=clients,
                duration=duration,
                warmup=warmup,
            )
        finally:
            procs.close()
    result["mode"] = mode
    return result


async def split_once(cluster: Cluster, *, tag: str, n: int = 1000) -> dict[str, Any]:
    """``bench.api_split`` in its own process on a fresh database: CPU per call, no server."""
    dsn = await cluster.new_database("apisplit")
    org = harness.bootstrap(dsn)
    with harness.workdir(tag):
        split = await harness.run_json_module(
            "bench.api_split", "--dsn", dsn, "--key", org.api_key, "--n", str(n)
        )
        plain = await harness.run_json_module("bench.asyncpg_loop", "--dsn", dsn, "--n", str(n))
    return {"mode": "split", **split, **plain}


def pgbench_script(org_id: str) -> str:
    """One task creation's statements as one pgbench transaction (the node runs them in one
    or two round trips; here without Python in between)."""
    task = json.loads(DEFAULT_BODY)
    row = {
        "name": task["url"],
        "url": task["url"],
        "method": "POST",
        "headers": {},
        "body": None,
        "schedule_type": "once",
        "timezone": "UTC",
        "timeout_ms": 30000,
        "retry_attempts": 0,
        "enabled": True,
    }
    insert = "\n".join(
        line for line in Q.insert_task.splitlines() if not line.strip().startswith("--")
    )
    insert = (
        insert.replace("$1", f"'{org_id}'::uuid")
        .replace("$2::jsonb", f"'{json.dumps(row)}'::jsonb")
        .replace("$3", "86400::float8")
    )
    audit = (
        "insert into audit_log (organization_id, actor_type, actor_id, action, resource_id,"
        f" status_code, ip) values ('{org_id}', 'api_key', null, 'POST /api/v1/tasks',"
        " gen_random_uuid()::text, 202, '127.0.0.1')"
    )
    return f"begin;\n{' '.join(insert.split())};\n{audit};\ncommit;\n"


async def pgbench_once(
    cluster: Cluster, *, clients: int, duration: float, tag: str
) -> dict[str, Any]:
    if shutil.which("pgbench") is None:
        return {"skipped": "pgbench not installed"}
    dsn = await cluster.new_database("apipgb")
    org = harness.bootstrap(dsn)
    with harness.workdir(tag) as work:
        path = work / "insert_task.sql"
        path.write_text(pgbench_script(org.id))
        ran = await asyncio.to_thread(
            partial(harness.run_pgbench, cluster, dsn, path, clients=clients, duration_s=duration)
        )
    elapsed, cpu = ran.elapsed_s, ran.cpu
    conn = await asyncpg.connect(dsn)
    try:
        done = await conn.fetchval("select count(*) from tasks")
    finally:
        await conn.close()
    return {
        "mode": "pgbench",
        "clients": clients,
        "tasks": done,
        "elapsed_s": elapsed,
        "rps": done / elapsed,
        "postgres_cpu_us_per_task": round(cpu.get("postgres", 0) / max(done, 1) * 1e6),
        "cpu_s": cpu,
    }


# ------------------------------------------------------------------------------ the table

API_ROWS = (
    ("api_runlater", "runlater serve, POST /api/v1/tasks"),
    ("api_runlater_idem", "runlater serve, same + Idempotency-Key"),
    ("api_bare-quart", "baseline: bare quart-trio route, no DB"),
    ("api_bare-asgi", "baseline: bare hypercorn ASGI app, no DB"),
)


def table(res: Any, args: Any, nproc: int) -> tuple[list[str], dict[str, Any]]:
    """The API section of the report: ``res`` is bench.__main__.Results."""
    lines: list[str] = []
    summ: dict[str, Any] = {}
    if not any(res.runs.get(key) for key, _ in API_ROWS):
        return lines, summ
    quart = res.med("api_bare-quart", "rps")
    asgi = res.med("api_bare-asgi", "rps")
    lines.append(
        f"API throughput: POST /api/v1/tasks (one-time task, due in a day), {args.api_connections} "
        f"keep-alive connections from {args.api_clients} client process(es), closed loop, "
        f"{args.api_duration:.0f} s after {args.api_warmup:.0f} s warm-up; median of "
        f"{args.runs} round(s); latency of every request in the window, all rounds' medians"
    )
    head = (
        f"{'run':44} {'req/s':>7} {'range':>11} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} "
        f"{'node µs':>7} {'pg µs':>6} {'client µs':>9} {'vs quart':>8} {'vs ASGI':>8} "
        f"{'other load':>10}"
    )
    lines += [head, "-" * len(head)]
    for key, label in API_ROWS:
        runs = res.runs.get(key)
        if not runs:
            continue
        rps = res.values(key, "rps")
        v = res.med(key, "rps")
        lat = {q: res.med(key, f"latency_ms.{q}") for q in ("p50", "p95", "p99", "max")}
        cpu = {k: res.med(key, f"cpu_us_per_request.{k}") for k in ("serve", "postgres", "client")}
        summ[key] = {
            "median_per_s": v,
            "runs": rps,
            "latency_ms": lat,
            "p99_runs": res.values(key, "latency_ms.p99"),
            "cpu_us_per_request": cpu,
            "ratio_bare_quart": v / quart if v and quart else None,
            "ratio_bare_asgi": v / asgi if v and asgi else None,
            "consistent": all(r.get("consistent", True) for r in runs),
            "other_load_cores": res.other_load(key),
        }
        total = sum(c or 0 for c in cpu.values())
        summ[key]["ceiling_per_s"] = {
            "node_one_core": 1e6 / cpu["serve"] if cpu["serve"] else None,
            "machine": nproc * 1e6 / total if total else None,
        }

        def f(x: float | None, digits: int = 0) -> str:
            return "-" if x is None else f"{x:,.{digits}f}"

        spread = f"{min(rps):,.0f}-{max(rps):,.0f}" if len(rps) > 1 else ""
        lines.append(
            f"{label:44} {f(v):>7} {spread:>11} {f(lat['p50'], 1):>7} {f(lat['p95'], 1):>7} "
            f"{f(lat['p99'], 1):>7} {f(cpu['serve']):>7} {f(cpu['postgres']):>6} "
            f"{f(cpu['client']):>9} "
            f"{'-' if not summ[key]['ratio_bare_quart'] else f'{v / quart:.0%}':>8} "
            f"{'-' if not summ[key]['ratio_bare_asgi'] else f'{v / asgi:.0%}':>8} "
            f"{f(res.other_load(key), 2):>10}"
            + ("" if summ[key]["consistent"] else "   DATABASE COUNTS DO NOT MATCH")
        )
    pgb = res.runs.get("api_pgbench")
    if pgb and not pgb[0].get("skipped"):
        v = res.med("api_pgbench", "rps")
        summ["api_pgbench"] = {
            "median_per_s": v,
            "runs": res.values("api_pgbench", "rps"),
            "postgres_cpu_us_per_task": res.med("api_pgbench", "postgres_cpu_us_per_task"),
        }
        lines.append(
            f"{'baseline: pgbench insert_task + audit insert':44} {v:>7,.0f} "
            f"(tasks/s, {pgb[0]['clients']} clients, one transaction per task; Postgres "
            f"{summ['api_pgbench']['postgres_cpu_us_per_task']:,.0f} µs/task)"
        )
    if res.runs.get("api_split"):
        split = {
            k: res.med("api_split", k)
            for k in (
                "asyncio_select1",
                "crossing_select1",
                "app_bare_quart",
                "app_runlater_no_db",
                "app_runlater",
                "runlater_python",
                "runlater_database",
            )
        }
        summ["api_split"] = split
        lines.append(
            "  in one process, no server (bench/api_split.py), CPU µs per call, one at a time: "
            f"SELECT 1 on plain asyncio+asyncpg {split['asyncio_select1']:,.0f}, through "
            f"runlater's bridge (trio-asyncio) {split['crossing_select1']:,.0f}; ASGI app: bare "
            f"quart {split['app_bare_quart']:,.0f}, runlater without database "
            f"{split['app_runlater_no_db']:,.0f}, runlater {split['app_runlater']:,.0f} "
            f"(= quart + {split['runlater_python']:,.0f} runlater Python + "
            f"{split['runlater_database']:,.0f} database: insert + audit insert, unbatched)"
        )
    lines.append(
        "  node/pg/client µs = CPU per answered request of the server process, all Postgres "
        "backends and the load generators; ceilings: one node = 1e6 / node µs (one Python "
        f"thread), machine = {nproc} cores x 1e6 / (node + pg + client)"
    )
    for key, _ in API_ROWS:
        if key in summ:
            c = summ[key]["ceiling_per_s"]
            lines.append(
                f"  {key:24} ceiling node {c['node_one_core'] or 0:>7,.0f}/s   machine "
                f"{c['machine'] or 0:>7,.0f}/s"
            )
    return lines, summ


def profile_lines(run: dict[str, Any]) -> list[str]:
    """The report's lines for a profiled API run (``profile_api``)."""
    prof = run["profile"]
    cpu = run["cpu_us_per_request"].get("serve")
    lines = [
        f"Where the node's CPU goes (profile_api: {run['rps']:.0f} req/s under py-spy, node "
        f"{cpu} µs/request; {prof['samples']} samples; flame graph {prof['svg']})",
        "  exclusive split, µs/request = share x node µs:",
    ]
    for item in prof.get("api_breakdown_pct", []):
        share = f"{item['pct'] * cpu / 100:6.0f} µs" if cpu else ""
        lines.append(f"  {item['pct']:5.1f}%  {share}  {item['frame']}")
    lines.append("  top self time:")
    lines += [f"  {item['pct']:5.1f}%  {item['frame']}" for item in prof["self_top"][:12]]
    lines.append("  top inclusive (runlater/library frames):")
    lines += [f"  {item['pct']:5.1f}%  {item['frame']}" for item in prof["inclusive_top"][:20]]
    return lines
