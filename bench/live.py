"""Live events over websockets (``python -m bench.live``): push latency, delivery throughput
with clients connected, memory per idle connection.

Three parts (``--only latency,throughput,memory``), each on a fresh database of one throwaway
cluster; the websocket clients are ``bench.live_clients`` (trio + trio-websocket, one process,
``Authorization: Bearer <api key>`` on ``/api/v1/live``).

**latency** — two ``runlater serve`` nodes on one database, ``--clients`` (50) clients split
round-robin over the two, each on ``?types=execution.finished``. One-time tasks are inserted
by paced SQL (``bench.lateness``'s inserter: 10 ms batches, one NOTIFY each), due ``LEAD_S``
after their insert and spaced 1/``--rate`` apart, for ``--seconds``: the nodes claim and
deliver them to the sink, so executions finish at a steady ``--rate`` per second. A frame's
latency is the client's receive time (``time.time()`` when ``get_message()`` hands it the
frame) minus the execution's ``finished_at``, which the recording statement
(``complete_executions``) sets with ``now()`` — the start of its transaction, the statement
being its own transaction — on the same machine clock. So the figure is commit → frame plus
the recording statement's own execution time and commit (the statement's mean execution time
from pg_stat_statements is reported beside it as that bias). The frame's ``at`` is that same
``finished_at`` truncated to milliseconds (0 to 1 ms more latency): the table shows both the
figure from ``at`` and from ``finished_at`` read back from the database with microseconds.
Baseline in the same run: a bare asyncpg ``LISTEN runlater_events`` in this process, the
``xf`` notifications' receive time minus the same ``finished_at`` (Postgres' NOTIFY alone, no
node). Every client must receive every measured execution's frame: frames still missing
``GRACE_S`` after the last execution was recorded are reported missing.

**throughput** — ``bench.throughput.run_once`` (1 node, ``--workers``, ``--n`` due tasks,
the clock from the insert's commit to all recorded) without clients and with ``--clients``
clients connected to the node from before its warm-up, listening to every event type and
reconnecting when closed (overflow: 1013), interleaved over ``--rounds`` (order alternating);
ratio with/without per round, median.

**memory** — one node, its RSS (``/proc/<pid>/status``) with no websocket client, then with
``--idle-clients`` (1,000) connected idle clients (one organization, API key), per round; the
node trims its C heap every ``HEAP_TRIM_S`` (``RUNLATER_HEAP_TRIM_INTERVAL_S``, default 60)
so both sides are read after a trim rather than at a high-water mark. Per connection: the
difference / connections. Also the node's CPU while idle with and without the clients (each
connection re-checks its key every 0.5 s).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import subprocess
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg

from bench import harness, lateness, throughput
from bench.harness import Cluster, CpuMeter, Processes, log, median, percentile, summary
from bench.soak import rss_mib

PARTS = ("latency", "throughput", "memory")
LEAD_S = 1.0  # a task is due this long after its insert
WARMUP_RATE, WARMUP_S = 100.0, 2.0  # tasks delivered (and frames sent) before the window
GRACE_S = 3.0  # after the last execution was recorded, frames still missing are missing
HEAP_TRIM_S = "2"  # the memory node's heap trim interval
SETTLE_S = 5.0  # memory: seconds between a change and the RSS reading
# The engine's recording statement (engine.sql complete_executions) in pg_stat_statements.
COMPLETE_PATTERNS = ("%with outcome as%", "%finished_at = now()%")
# The EventFeeder's reads (store/sql/events.sql), one per notification on every node with
# subscribers.
EVENT_READS = {
    "executions": ("%now() as read_at%", "%e.finished_at, e.queue%"),
    "tasks": ("%now() as read_at%", "%from task_view t%"),
}
MEASURED = """
select e.id::text as id, extract(epoch from e.finished_at)::float8 as finished_at, e.status
from executions e join tasks t on t.id = e.task_id
where t.headers ->> 'X-Bench-Run' = $1
"""


# ------------------------------------------------------------------------------ clients


async def start_clients(
    procs: Processes,
    ports: list[int],
    key: str,
    count: int,
    *,
    work: Path,
    name: str,
    types: str = "",
    record: Path | None = None,
    reconnect: bool = False,
    max_seconds: float = 900,
) -> tuple[subprocess.Popen, dict[str, Any]]:
    """``bench.live_clients`` with ``count`` clients over the nodes' ``ports``; returns once
    every client said hello or failed (its READY line)."""
    urls = ",".join(f"ws://127.0.0.1:{port}/api/v1/live" for port in ports)
    args = [harness.PY, "-m", "bench.live_clients", "--url", urls, "--key", key]
    args += ["--clients", str(count), "--max-seconds", str(max_seconds)]
    if types:
        args += ["--types", types]
    if record is not None:
        args += ["--record", str(record)]
    if reconnect:
        args.append("--reconnect")
    proc = procs.start(args, env=harness.clean_env(), stderr_path=work / f"{name}.log")
    line = await asyncio.to_thread(harness.read_line, proc, 60 + count / 10, "READY ")
    ready: dict[str, Any] = json.loads(line.split(" ", 1)[1])
    return proc, ready


async def stop_clients(procs: Processes, proc: subprocess.Popen) -> dict[str, Any]:
    """SIGUSR1 (by pid) to the clients' process: they close and it prints its JSON."""
    proc.send_signal(signal.SIGUSR1)
    try:
        out, _ = await asyncio.to_thread(proc.communicate, timeout=120)
    finally:
        procs.stop(proc)
    lines = out.decode(errors="replace").strip().splitlines()
    found: dict[str, Any] = json.loads(lines[-1])
    return found


def live_env(clients: int) -> dict[str, str]:
    # RUNLATER_LIVE_MAX_PER_ORG (100 per node) would refuse clients past the 100th.
    return {"RUNLATER_LIVE_MAX_PER_ORG": str(max(100, clients + 100))}


# ------------------------------------------------------------------------------ latency


def _load_json(path: Path) -> Any:
    return json.loads(path.read_text())


def _parse_at(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def latency_figures(
    recorded: list[dict[str, Any]],
    finished: dict[str, float],
    notices: list[tuple[float, str]],
) -> dict[str, Any]:
    """Percentiles over every client's frames of the measured executions, per client counts
    and missing frames, the bare NOTIFY baseline, and latency by second of the window (by
    the second its execution finished in)."""
    start = min(finished.values(), default=0.0)
    by_second: dict[int, list[float]] = {}
    from_db: list[float] = []
    from_at: list[float] = []
    by_node: dict[str, list[float]] = {}
    per_client = []
    for client in recorded:
        got: set[str] = set()
        frames = 0
        node_values = by_node.setdefault(str(client["node"]), [])
        for received, execution_id, at in client["finished"]:
            fin = finished.get(execution_id)
            if fin is None:  # a warm-up execution
                continue
            frames += 1
            got.add(execution_id)
            ms = (received - fin) * 1000
            from_db.append(ms)
            node_values.append(ms)
            by_second.setdefault(int(fin - start), []).append(ms)
            from_at.append((received - _parse_at(at)) * 1000)
        missing = len(finished) - len(got & finished.keys())
        per_client.append(
            {
                "index": client["index"],
                "node": client["node"],
                "frames": frames,
                "missing": missing,
                "duplicates": frames - len(got),
            }
        )
    notify: list[float] = []
    kinds: dict[str, int] = {}
    for received, payload in notices:
        with contextlib.suppress(ValueError, KeyError, TypeError):
            found = json.loads(payload)
            kinds[found["k"]] = kinds.get(found["k"], 0) + 1
            if found["k"] == "xf":
                notify += [(received - finished[i]) * 1000 for i in found["ids"] if i in finished]
    counts = [c["frames"] for c in per_client]
    return {
        "frame_ms": summary(from_db),
        "frame_ms_from_at": summary(from_at),
        "frame_ms_by_node": {node: summary(v) for node, v in sorted(by_node.items())},
        "notify_ms": summary(notify),
        # What each node's feeder is sent: notifications by kind (one per statement).
        "notifications": kinds,
        "notifications_per_s": (
            len(notices) / (notices[-1][0] - notices[0][0]) if len(notices) > 1 else None
        ),
        "timeline": [
            {"s": sec, "frames": len(v), "p50_ms": percentile(v, 50), "max_ms": max(v)}
            for sec, v in sorted(by_second.items())
        ],
        "expected_per_client": len(finished),
        "frames_per_client_min": min(counts) if counts else None,
        "frames_per_client_max": max(counts) if counts else None,
        "missing_total": sum(c["missing"] for c in per_client),
        "clients_missing": [c for c in per_client if c["missing"]],
        "duplicates_total": sum(c["duplicates"] for c in per_client),
        "per_client": per_client,
    }


async def latency_run(cluster: Cluster, args: argparse.Namespace) -> dict[str, Any]:
    dsn = await cluster.new_database("live_lat")
    org = harness.bootstrap(dsn)
    procs = Processes()
    tag = "live-latency"
    with harness.workdir(tag) as work:
        record = work / "frames.json"
        try:
            sink = harness.start_sink_of(procs, args.sink, work)
            url = f"http://127.0.0.1:{sink.port}/live"
            nodes = [
                harness.start_serve(
                    procs,
                    dsn,
                    max_workers=args.workers,
                    workdir=work,
                    name=f"node{i}",
                    extra_env=live_env(args.clients),
                )
                for i in (1, 2)
            ]
            clients, ready = await start_clients(
                procs,
                [port for _, port in nodes],
                org.api_key,
                args.clients,
                work=work,
                name="live-clients",
                types="execution.finished",
                record=record,
                max_seconds=args.seconds + 600,
            )
            log(f"latency: {ready['connected']} of {args.clients} clients connected")
            if ready["failed"]:
                raise RuntimeError(f"{ready['failed']} clients could not connect (see {work})")
            conn = await asyncpg.connect(dsn)
            listen = await asyncpg.connect(dsn)
            notices: list[tuple[float, str]] = []
            try:
                await listen.add_listener(
                    "runlater_events", lambda *a: notices.append((time.time(), a[3]))
                )
                warm = await lateness._insert_paced(
                    conn, org.id, url, rate=WARMUP_RATE, duration=WARMUP_S, lead=0.1, tag="warmup"
                )
                if await throughput._wait_recorded(conn, warm["created"], 60) is None:
                    raise RuntimeError("warm-up tasks were not delivered within 60 s")
                await asyncio.sleep(1.0)
                await harness.reset_statements(conn)
                notices.clear()
                meter = CpuMeter(
                    {
                        "serve": [p.pid for p, _ in nodes],
                        "sink": sink.pids(),
                        "clients": [clients.pid],
                    },
                    postmaster=cluster.postmaster,
                )
                meter.start()
                log(f"latency: {args.rate:g} tasks/s due for {args.seconds:g} s")
                created = await lateness._insert_paced(
                    conn, org.id, url, rate=args.rate, duration=args.seconds, lead=LEAD_S, tag=tag
                )
                total = warm["created"] + created["created"]
                recorded_at = await throughput._wait_recorded(conn, total, 120)
                if recorded_at is None:
                    log("latency: not every execution was recorded within 120 s")
                await asyncio.sleep(GRACE_S)
                cpu = meter.stop()
                clients_summary = await stop_clients(procs, clients)
                complete = await harness.statement_stats(conn, COMPLETE_PATTERNS)
                reads = {
                    kind: await harness.statement_stats(conn, patterns)
                    for kind, patterns in EVENT_READS.items()
                }
                rows = await conn.fetch(MEASURED, tag)
                statuses = await harness.status_counts(conn)
            finally:
                await listen.close()
                await conn.close()
            recorded: list[dict[str, Any]] = await asyncio.to_thread(_load_json, record)
        finally:
            procs.close()
            if not harness.KEEP_LOGS:
                record.unlink(missing_ok=True)
    finished = {r["id"]: r["finished_at"] for r in rows if r["finished_at"] is not None}
    span = max(finished.values()) - min(finished.values()) if len(finished) > 1 else None
    figures = latency_figures(recorded, finished, notices)
    return {
        "nodes": 2,
        "clients": args.clients,
        "sink": args.sink,
        "max_workers": args.workers,
        "target_rate": args.rate,
        "seconds": args.seconds,
        "insert": created,
        "executions": len(rows),
        "executions_finished": len(finished),
        "statuses": statuses,
        "finish_rate_per_s": (len(finished) - 1) / span if span else None,
        "recorded": recorded_at is not None,
        "complete_statement": complete,
        "event_reads": reads,  # both nodes' feeders, from pg_stat_statements
        "cpu_s": cpu,
        "other_load_cores": cpu["foreign"] / cpu["wall_s"],
        "clients_process": {k: v for k, v in clients_summary.items() if k != "clients"},
        "client_closes": [c for c in clients_summary["clients"] if c["closes"] or c["failed"]],
        **figures,
    }


# ------------------------------------------------------------------------------ throughput


def clients_attach(args: argparse.Namespace) -> throughput.Attach:
    """``--clients`` clients on every event type, reconnecting when closed, for a run."""

    async def attach(
        ports: list[int], org: harness.Org, procs: Processes, work: Path
    ) -> throughput.Attached:
        proc, ready = await start_clients(
            procs,
            ports,
            org.api_key,
            args.clients,
            work=work,
            name="live-clients",
            reconnect=True,
        )
        if ready["failed"]:
            raise RuntimeError(f"{ready['failed']} clients could not connect (see {work})")

        async def finish() -> dict[str, Any]:
            found = await stop_clients(procs, proc)
            by_type: dict[str, int] = {}
            for client in found["clients"]:
                for kind, n in client["by_type"].items():
                    by_type[kind] = by_type.get(kind, 0) + n
            return {
                **{k: v for k, v in found.items() if k != "clients"},
                "by_type": by_type,
                "connected_at_start": ready["connected"],
            }

        return throughput.Attached([proc.pid], finish)

    return attach


async def throughput_rounds(cluster: Cluster, args: argparse.Namespace) -> dict[str, Any]:
    runs: dict[str, list[dict[str, Any]]] = {"none": [], "clients": []}
    for rnd in range(1, args.rounds + 1):
        modes = ["none", "clients"] if rnd % 2 else ["clients", "none"]
        for mode in modes:
            log(f"throughput round {rnd}: {mode}, 1 node, N={args.n}")
            r = await throughput.run_once(
                cluster,
                n=args.n,
                max_workers=args.workers,
                nodes=1,
                tag=f"live-tput-r{rnd}-{mode}",
                sink_kind=args.sink,
                extra_env=live_env(args.clients),
                attach=clients_attach(args) if mode == "clients" else None,
            )
            r["round"] = rnd
            r["other_load_cores"] = r["cpu_s"]["foreign"] / r["cpu_s"]["wall_s"]
            attached = r.get("attached") or {}
            log(
                f"  -> {r['deliveries_per_s'] or 0:,.0f} deliveries/s, all success "
                f"{r['all_success']}, node {r['cpu_us_per_delivery'].get('serve')} µs/delivery"
                + (
                    f", {attached.get('frames', 0):,} frames, "
                    f"{attached.get('overflows', 0)} overflows"
                    if attached
                    else ""
                )
            )
            runs[mode].append(r)
    ratios, cpu_ratios = [], []
    for none, with_clients in zip(runs["none"], runs["clients"], strict=True):
        if none["deliveries_per_s"] and with_clients["deliveries_per_s"]:
            ratios.append(with_clients["deliveries_per_s"] / none["deliveries_per_s"])
        cpu_none = none["cpu_us_per_delivery"].get("serve")
        cpu_with = with_clients["cpu_us_per_delivery"].get("serve")
        if cpu_none and cpu_with:
            cpu_ratios.append(cpu_with / cpu_none)

    def med(mode: str, key: str) -> float | None:
        return median([r.get(key) for r in runs[mode]])

    return {
        "n": args.n,
        "max_workers": args.workers,
        "sink": args.sink,
        "clients": args.clients,
        "runs": runs,
        "deliveries_per_s": {m: med(m, "deliveries_per_s") for m in runs},
        "deliveries_per_s_runs": {m: [r["deliveries_per_s"] for r in runs[m]] for m in runs},
        "ratio_per_round": ratios,
        "ratio": median(ratios),
        "node_cpu_us_per_delivery": {
            m: median([r["cpu_us_per_delivery"].get("serve") for r in runs[m]]) for m in runs
        },
        "node_cpu_ratio": median(cpu_ratios),
        "clients_cpu_us_per_delivery": median(
            [r["cpu_us_per_delivery"].get("attached") for r in runs["clients"]]
        ),
        "other_load_cores": {m: med(m, "other_load_cores") for m in runs},
        "all_success": all(r["all_success"] for m in runs for r in runs[m]),
        "frames": median([(r.get("attached") or {}).get("frames") for r in runs["clients"]]),
        "overflows": median([(r.get("attached") or {}).get("overflows") for r in runs["clients"]]),
    }


# ------------------------------------------------------------------------------ memory


async def _rss_over(pid: int, seconds: float, every_s: float = 0.5) -> list[float]:
    samples = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        samples.append(rss_mib(pid))
        await asyncio.sleep(every_s)
    return samples


async def memory_round(cluster: Cluster, args: argparse.Namespace, rnd: int) -> dict[str, Any]:
    dsn = await cluster.new_database("live_mem")
    org = harness.bootstrap(dsn)
    procs = Processes()
    with harness.workdir(f"live-memory-r{rnd}") as work:
        try:
            env = {**live_env(args.idle_clients), "RUNLATER_HEAP_TRIM_INTERVAL_S": HEAP_TRIM_S}
            node, port = harness.start_serve(
                procs, dsn, max_workers=args.workers, workdir=work, extra_env=env
            )
            # First connections load code and fill caches: not charged to the 1,000.
            warm, _ = await start_clients(
                procs, [port], org.api_key, 10, work=work, name="warm-clients"
            )
            await stop_clients(procs, warm)
            await asyncio.sleep(SETTLE_S)
            idle = CpuMeter({"serve": [node.pid]})
            idle.start()
            before = await _rss_over(node.pid, SETTLE_S)
            idle_cpu = idle.stop()
            t0 = time.monotonic()
            connecting = asyncio.ensure_future(
                start_clients(
                    procs,
                    [port],
                    org.api_key,
                    args.idle_clients,
                    work=work,
                    name="idle-clients",
                    max_seconds=600,
                )
            )
            peak = 0.0
            while not connecting.done():
                peak = max(peak, rss_mib(node.pid))
                await asyncio.sleep(0.1)
            clients, ready = connecting.result()
            connect_s = time.monotonic() - t0
            await asyncio.sleep(SETTLE_S)
            held = CpuMeter({"serve": [node.pid], "clients": [clients.pid]})
            held.start()
            during = await _rss_over(node.pid, SETTLE_S)
            held_cpu = held.stop()
            found = await stop_clients(procs, clients)
            await asyncio.sleep(SETTLE_S)
            after = await _rss_over(node.pid, SETTLE_S)
        finally:
            procs.close()
    connected = ready["connected"]
    before_mib, during_mib, after_mib = median(before), median(during), median(after)
    assert before_mib is not None and during_mib is not None and after_mib is not None
    closes: dict[str, int] = {}
    for client in found["clients"]:
        for code, n in client["closes"].items():
            closes[code] = closes.get(code, 0) + n
    return {
        "round": rnd,
        "idle_clients": args.idle_clients,
        "connected": connected,
        "failed": ready["failed"],
        "connect_s": connect_s,
        "rss_mib_none": before_mib,
        "rss_mib_with": during_mib,
        "rss_mib_peak_while_connecting": max(peak, *during),
        "rss_mib_after_close": after_mib,
        "kib_per_connection": (during_mib - before_mib) * 1024 / connected if connected else None,
        "node_cores_idle_none": idle_cpu["serve"] / idle_cpu["wall_s"],
        "node_cores_idle_with": held_cpu["serve"] / held_cpu["wall_s"],
        "clients_cores_idle": held_cpu["clients"] / held_cpu["wall_s"],
        "other_load_cores": held_cpu["foreign"] / held_cpu["wall_s"],
        "closed_while_idle": closes,
        "samples": {"none": before, "with": during, "after_close": after},
    }


def memory_summary(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    keys = (
        "rss_mib_none",
        "rss_mib_with",
        "rss_mib_peak_while_connecting",
        "rss_mib_after_close",
        "kib_per_connection",
        "node_cores_idle_none",
        "node_cores_idle_with",
        "connect_s",
        "other_load_cores",
    )
    return {k: median([r[k] for r in rounds]) for k in keys} | {
        "kib_per_connection_runs": [r["kib_per_connection"] for r in rounds]
    }


# ------------------------------------------------------------------------------ report


def fmt(v: float | None, digits: int = 0) -> str:
    return "-" if v is None else f"{v:,.{digits}f}"


def table(result: dict[str, Any]) -> str:
    m = result["machine"]
    lines = [
        f"Runlater live events {result['started'][:16]} UTC — {m['nproc']} CPU(s) "
        f"{m['cpu_model']}, {m['mem_gb']} GiB, Linux {m['kernel']}, Python {m['python']}, "
        f"{result.get('postgres', '?')}; git {m['git_head'][:7]}"
        + (" (modified files)" if m["git_modified_files"] else "")
        + f"; {result['elapsed_s']:.0f} s",
        "'other load' = CPU cores used meanwhile by processes outside the benchmark",
    ]
    lat = result.get("latency")
    if lat:
        lines += [
            "",
            f"Push latency: 2 nodes, {lat['clients']} clients (?types=execution.finished) "
            f"split over both, {lat['target_rate']:g} executions/s due for "
            f"{lat['seconds']:g} s, sink {lat['sink']}; achieved finish rate "
            f"{fmt(lat['finish_rate_per_s'])}/s; other load "
            f"{fmt(lat['other_load_cores'], 2)} cores",
            f"{'from finished_at (commit - rest of the recording transaction) to':58} "
            f"{'n':>9} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'max ms':>7}",
        ]

        def row(label: str, s: dict[str, Any]) -> str:
            return (
                f"{label:58} {s['n']:>9,} {fmt(s['p50'], 1):>7} {fmt(s['p95'], 1):>7} "
                f"{fmt(s['p99'], 1):>7} {fmt(s['max'], 1):>7}"
            )

        lines.append(row("  frame received by a client (finished_at, µs)", lat["frame_ms"]))
        lines.append(
            row(
                "  frame received by a client (frame's `at`, ms-truncated)", lat["frame_ms_from_at"]
            )
        )
        for node, s in lat["frame_ms_by_node"].items():
            lines.append(row(f"    clients on {node}", s))
        lines.append(row("  baseline: NOTIFY at a bare asyncpg LISTEN (no node)", lat["notify_ms"]))
        cs = lat["complete_statement"] or {}
        cpu = lat["cpu_s"]
        reads = ", ".join(
            f"{kind} {fmt(st['calls'])} x {fmt(st['mean_ms'], 2)} ms"
            for kind, st in (lat.get("event_reads") or {}).items()
            if st
        )
        timeline = lat.get("timeline") or []
        step = max(1, len(timeline) // 10)
        points = timeline[::step]
        if timeline and points[-1] is not timeline[-1]:
            points.append(timeline[-1])
        shape = ", ".join(f"{t['s']} s: {fmt(t['p50_ms'])}" for t in points)
        lines += [
            f"  bias: the recording statement runs {fmt(cs.get('mean_ms'), 2)} ms on average "
            f"(pg_stat_statements, {fmt(cs.get('calls'))} calls, "
            f"{fmt(cs.get('rows_per_call'), 1)} rows each) after finished_at = now(), before "
            "its commit",
            f"  frames per client: expected {lat['expected_per_client']:,}, got "
            f"{fmt(lat['frames_per_client_min'])} to {fmt(lat['frames_per_client_max'])}; "
            f"missing {lat['missing_total']:,} in all, duplicates {lat['duplicates_total']:,}; "
            f"overflows {lat['clients_process']['overflows']}, closes "
            f"{len(lat['client_closes'])}; goal p99 ≤ 100 ms: "
            + ("met" if (lat["frame_ms"]["p99"] or 1e9) <= 100 else "NOT met"),
            f"  notifications heard (bare LISTEN): {fmt(lat.get('notifications_per_s'))}/s "
            f"{lat.get('notifications')}; feeder reads (both nodes): {reads}",
            f"  p50 ms by second of the window: {shape}",
            "  CPU cores over the window: "
            + ", ".join(
                f"{group} {fmt(cpu[group] / cpu['wall_s'], 2)}"
                for group in ("serve", "clients", "postgres", "sink", "bench_orchestrator")
            ),
        ]
    tp = result.get("throughput")
    if tp:
        lines += [
            "",
            f"Delivery throughput with {tp['clients']} clients (every event type, reconnecting) "
            f"vs none: 1 node, max_workers {tp['max_workers']}, N={tp['n']}, sink {tp['sink']}, "
            f"median of {len(tp['runs']['none'])} interleaved round(s)",
            f"{'':22} {'deliveries/s':>12} {'runs':>22} {'node µs/deliv.':>14} {'other load':>10}",
        ]
        for mode, label in (("none", "no clients"), ("clients", f"{tp['clients']} clients")):
            runs = ", ".join(fmt(v) for v in tp["deliveries_per_s_runs"][mode])
            lines.append(
                f"{label:22} {fmt(tp['deliveries_per_s'][mode]):>12} {runs:>22} "
                f"{fmt(tp['node_cpu_us_per_delivery'][mode]):>14} "
                f"{fmt(tp['other_load_cores'][mode], 2):>10}"
            )
        ratio = tp["ratio"]
        lines += [
            f"  ratio with/without: {fmt(ratio, 2)} (per round "
            f"{', '.join(fmt(r, 2) for r in tp['ratio_per_round'])}); goal ≥ 0.90: "
            + ("met" if ratio is not None and ratio >= 0.9 else "NOT met"),
            f"  node CPU per delivery with/without: {fmt(tp['node_cpu_ratio'], 2)}; clients' "
            f"process {fmt(tp['clients_cpu_us_per_delivery'])} µs per delivery; frames "
            f"received {fmt(tp['frames'])}, overflows (1013) {fmt(tp['overflows'])} (medians "
            f"per run); all success: {tp['all_success']}",
        ]
    mem = result.get("memory")
    if mem:
        s = mem["summary"]
        n = mem["rounds"][0]["idle_clients"] if mem["rounds"] else 0
        lines += [
            "",
            f"Memory of one node with {n:,} idle websocket clients vs none (RSS, median of "
            f"{len(mem['rounds'])} round(s), heap trimmed every {HEAP_TRIM_S} s)",
            f"  RSS none {fmt(s['rss_mib_none'], 1)} MiB, with {fmt(s['rss_mib_with'], 1)} MiB "
            f"(peak while connecting {fmt(s['rss_mib_peak_while_connecting'], 1)}), after they "
            f"closed {fmt(s['rss_mib_after_close'], 1)} MiB",
            f"  per connection: {fmt(s['kib_per_connection'], 1)} KiB (runs "
            f"{', '.join(fmt(v, 1) for v in s['kib_per_connection_runs'])}); connected in "
            f"{fmt(s['connect_s'], 1)} s",
            f"  node CPU while idle: {fmt(s['node_cores_idle_none'], 3)} cores without, "
            f"{fmt(s['node_cores_idle_with'], 3)} with the clients; other load "
            f"{fmt(s['other_load_cores'], 2)} cores",
        ]
    return "\n".join(lines)


async def amain(args: argparse.Namespace) -> dict[str, Any]:
    async with harness.throwaway_run(args) as (cluster, result):
        if "latency" in args.only:
            result["latency"] = await latency_run(cluster, args)
        if "throughput" in args.only:
            result["throughput"] = await throughput_rounds(cluster, args)
        if "memory" in args.only:
            rounds = []
            for rnd in range(1, args.rounds + 1):
                log(f"memory round {rnd}: 1 node, {args.idle_clients:,} idle clients vs none")
                rounds.append(await memory_round(cluster, args, rnd))
                log(f"  -> {rounds[-1]['kib_per_connection'] or 0:.1f} KiB per connection")
            result["memory"] = {"rounds": rounds, "summary": memory_summary(rounds)}
    return result


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.live", description=__doc__.splitlines()[0])
    p.add_argument("--only", default=",".join(PARTS), help=f"subset of {','.join(PARTS)}")
    p.add_argument("--rounds", type=int, default=3, help="throughput and memory rounds (3)")
    p.add_argument("--clients", type=int, default=50, help="websocket clients (50)")
    p.add_argument("--rate", type=float, default=200.0, help="latency: executions/s (200)")
    p.add_argument("--seconds", type=float, default=30.0, help="latency: seconds of load (30)")
    p.add_argument("--idle-clients", type=int, default=1000, help="memory: idle clients (1000)")
    # 20,000 (about 10 s a run): with 6,000 a run is mostly the burst of task.created events
    # at its start, which overflows every client; the ratio then says little of the steady state.
    p.add_argument("--n", type=int, default=20000, help="throughput: tasks per run (20000)")
    p.add_argument("--workers", type=int, default=50, help="RUNLATER_MAX_WORKERS (50)")
    p.add_argument(
        "--sink",
        choices=harness.SINKS,
        default="nginx" if harness.nginx_binary() else "python",
        help="delivery target (default nginx when installed, else python)",
    )
    p.add_argument("--keep-logs", action="store_true", help="keep the recorded frames")
    p.add_argument("--out", help="JSON path (default bench/results/live-<time>.json)")
    args = p.parse_args(argv)
    args.only = [part for part in args.only.split(",") if part]
    if unknown := set(args.only) - set(PARTS):
        p.error(f"unknown parts {sorted(unknown)}; choose from {','.join(PARTS)}")
    harness.KEEP_LOGS = args.keep_logs
    result = asyncio.run(amain(args))
    print(table(result))
    harness.write_result("live", result, args.out)


if __name__ == "__main__":
    main()
