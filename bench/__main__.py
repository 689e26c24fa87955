"""``python -m bench [--quick] [--only ...]``: run the benchmarks, print a table, write JSON.

Benchmarks run in interleaved rounds (every benchmark once per round, ``--runs`` rounds) so a
noisy neighbour hits baselines and measurements alike; the table shows the median over rounds
and the min-max spread, and ratios to the baselines measured in the same invocation.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import api, harness, lateness, pgbench, profiling, throughput
from bench.harness import Cluster, log, median

ALL = ("baselines", "pgbench", "throughput", "logging", "lateness", "api", "profile")
# The logging benchmark: the same 1-node drain with the delivery log off (WARNING: successes
# log nothing), as text (the default) and as JSON. Each node's stderr goes to a file.
LOG_MODES = {
    "off": {"RUNLATER_LOG_LEVEL": "WARNING"},
    "text": {"RUNLATER_LOG_FORMAT": "text"},
    "json": {"RUNLATER_LOG_FORMAT": "json"},
}
TRANSPORTS = ("runlater", "httpx")


def tput_key(transport: str, sink: str, workers: int, nodes: int) -> str:
    return f"tput_{transport}_{sink}_w{workers}_n{nodes}"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    p.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 1 round, small N, short lateness runs, no profile",
    )
    p.add_argument(
        "--only",
        default=None,
        help=f"comma-separated subset of {','.join(ALL)} (default all; quick: all but profile)",
    )
    p.add_argument("--runs", type=int, help="rounds (default 3, quick 1)")
    p.add_argument("--n", type=int, help="tasks per throughput run (default 6000, quick 2000)")
    p.add_argument(
        "--workers",
        default=None,
        help="RUNLATER_MAX_WORKERS values for 1-node throughput (default 50,100)",
    )
    p.add_argument(
        "--two-nodes",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also drain with 2 nodes (default on, quick off)",
    )
    p.add_argument(
        "--rates",
        default=None,
        help="lateness rates per s; 'half' = 50%% of the measured 1-node throughput "
        "(default 20,half,500; quick 20,500)",
    )
    p.add_argument("--duration", type=float, help="seconds per lateness run (default 15)")
    p.add_argument("--lead", type=float, default=1.0, help="run_at = creation + lead seconds")
    p.add_argument(
        "--transports",
        default="runlater,httpx",
        help="outbound transports for the 1-node throughput run (httpx: the baseline node of "
        "bench.httpx_node), interleaved in "
        "every round; the first is the one measured (other configs, lateness, profile), the "
        "others are baselines (default runlater,httpx)",
    )
    p.add_argument(
        "--sink",
        default="python",
        help="sink(s) for throughput and the HTTP baselines: python (logs arrivals, ~300 µs "
        "CPU per request), nginx (answers 200 'ok', no log), or python,nginx (default python; "
        "lateness always uses the python sink)",
    )
    p.add_argument(
        "--lateness-mode",
        choices=("api", "sql"),
        default="api",
        help="api: create through the API, paced SQL inserts when it cannot keep the rate "
        "(default); sql: paced SQL inserts only",
    )
    p.add_argument(
        "--claim-index",
        action="store_true",
        help="experiment: also run the measured 1-node throughput config on a database with "
        "an index matching the claim's order (executions (priority, scheduled_for) where "
        "pending), which runlater's migrations do not create",
    )
    p.add_argument("--concurrency", type=int, default=50, help="HTTP baseline concurrency")
    p.add_argument(
        "--api-connections",
        type=int,
        default=16,
        help="API benchmark: keep-alive connections in all (default 16)",
    )
    p.add_argument(
        "--api-clients", type=int, default=1, help="API benchmark: load processes (default 1)"
    )
    p.add_argument(
        "--api-duration", type=float, help="API benchmark: measured seconds (default 10, quick 5)"
    )
    p.add_argument("--api-warmup", type=float, default=2.0, help="API benchmark: warm-up s")
    p.add_argument(
        "--api-idempotency",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="API benchmark: also run with an Idempotency-Key per request (default on)",
    )
    p.add_argument("--keep-logs", action="store_true", help="keep sink JSON logs in results/work")
    p.add_argument("--out", help="JSON path (default bench/results/bench-<time>.json)")
    p.add_argument("--report", metavar="JSON", help="only print the table of a saved run")
    args = p.parse_args(argv)
    q = args.quick
    args.runs = args.runs or (1 if q else 3)
    args.n = args.n or (2000 if q else 6000)
    args.workers = [int(w) for w in (args.workers or ("50" if q else "50,100")).split(",")]
    args.two_nodes = (not q) if args.two_nodes is None else args.two_nodes
    args.rates = (args.rates or ("20,500" if q else "20,half,500")).split(",")
    args.duration = args.duration or (8.0 if q else 15.0)
    args.api_duration = args.api_duration or (5.0 if q else 10.0)
    default_only = [b for b in ALL if not (q and b == "profile")]
    args.only = {s.strip() for s in (args.only or ",".join(default_only)).split(",") if s.strip()}
    unknown = args.only - set(ALL)
    if unknown:
        p.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    args.transports = [t.strip() for t in args.transports.split(",") if t.strip()]
    if not args.transports or set(args.transports) - set(TRANSPORTS):
        p.error(f"--transports takes a subset of {','.join(TRANSPORTS)}")
    args.sinks = [k.strip() for k in args.sink.split(",") if k.strip()]
    if not args.sinks or set(args.sinks) - set(harness.SINKS):
        p.error(f"--sink takes a subset of {','.join(harness.SINKS)}")
    if "nginx" in args.sinks and harness.nginx_binary() is None and not args.report:
        log("nginx not found (apt-get install -y nginx-light): the python sink is used instead")
        args.sinks = [k for k in args.sinks if k != "nginx"] or ["python"]
    return args


class Results:
    def __init__(self) -> None:
        self.runs: dict[str, list[dict[str, Any]]] = {}

    def add(self, key: str, result: dict[str, Any]) -> None:
        self.runs.setdefault(key, []).append(result)

    def values(self, key: str, path: str) -> list[float]:
        out = []
        for r in self.runs.get(key, []):
            value: Any = r
            for part in path.split("."):
                value = value.get(part) if isinstance(value, dict) else None
            if isinstance(value, int | float):
                out.append(float(value))
        return out

    def med(self, key: str, path: str) -> float | None:
        return median(self.values(key, path))

    def other_load(self, key: str) -> float | None:
        """Median CPU (in cores) that processes outside the benchmark used during the runs."""
        loads = [
            r["cpu_s"]["foreign"] / r["cpu_s"]["wall_s"]
            for r in self.runs.get(key, [])
            if "foreign" in r.get("cpu_s", {}) and r["cpu_s"].get("wall_s")
        ]
        return median(loads)


async def one_round(cluster: Cluster, args: argparse.Namespace, res: Results, rnd: int) -> None:
    n = args.n
    c = args.concurrency
    sink0 = args.sinks[0]
    # Baselines and measurements alternate their order from round to round, so a slow phase
    # of the machine does not always hit the same one.
    transports = args.transports if rnd % 2 else list(reversed(args.transports))
    if "baselines" in args.only:
        # The HTTP client alone (raw h11: the floor; httpx's default client), then runlater's
        # Deliverer (no database) on each transport, at the node's concurrency.
        modes = [("h11", max(n, 5000)), ("httpx", min(n, 3000))]
        modes += [
            ("deliverer" if t == "httpx" else "deliverer-runlater", min(n, 3000))
            for t in transports
        ]
        for mode, count in modes:
            log(f"round {rnd}: HTTP baseline {mode} ({count} requests, concurrency {c}, {sink0})")
            r = await throughput.http_baseline(
                mode, count=count, concurrency=c, tag=f"r{rnd}-http-{mode}", sink_kind=sink0
            )
            log(f"  -> {r['rps']:.0f} req/s, client {r['client_cpu_us_per_req']:.0f} µs/req")
            res.add(f"http_{mode}", r)
    if "pgbench" in args.only:
        for clients in (1, 2):
            log(f"round {rnd}: pgbench claim+complete batch 50, {clients} client(s)")
            r = await pgbench.run_once(
                cluster,
                n=max(n, 10000) * 2,
                batch=50,
                clients=clients,
                tag=f"r{rnd}-pgbench-c{clients}",
            )
            log(f"  -> {r.get('rows_per_s', 0):.0f} rows/s")
            res.add(f"pgbench_c{clients}", r)
    if "throughput" in args.only:
        w0 = args.workers[0]
        # Every transport x sink at 1 node / first workers value (interleaved), then the
        # other configs with the measured transport and the first sink only.
        configs = [(t, k, w0, 1, "") for k in args.sinks for t in transports]
        configs += [(args.transports[0], sink0, w, 1, "") for w in args.workers[1:]]
        if args.two_nodes:
            configs.append((args.transports[0], sink0, w0, 2, ""))
        if args.claim_index:
            configs.append((args.transports[0], sink0, w0, 1, "_claimidx"))
        for transport, sink, workers, nodes, variant in configs:
            log(
                f"round {rnd}: throughput {nodes} node(s), max_workers {workers}, "
                f"transport {transport}, sink {sink}, N={n}"
                + (" (claim index experiment)" if variant else "")
            )
            key = tput_key(transport, sink, workers, nodes) + variant
            r = await throughput.run_once(
                cluster,
                n=n,
                max_workers=workers,
                nodes=nodes,
                transport=transport,
                sink_kind=sink,
                tag=f"r{rnd}-{key}",
                extra_sql=throughput.CLAIM_INDEX_SQL if variant else None,
            )
            cpu = r["cpu_us_per_delivery"]
            log(
                f"  -> {r['deliveries_per_s'] or 0:.0f} deliveries/s (recorded in "
                f"{r['recorded_s']}s, all success {r['all_success']}, dup {r['duplicates']}); "
                f"CPU µs/delivery node {cpu.get('serve')} pg {cpu.get('postgres')} "
                f"sink {cpu.get('sink')}"
            )
            res.add(key, r)
    if "logging" in args.only:
        await logging_round(cluster, args, res, rnd)
    if "api" in args.only:
        await api_round(cluster, args, res, rnd)
    if "lateness" in args.only:
        transport = args.transports[0]
        for raw in args.rates:
            rate = _rate(raw, args, res)
            if rate is None:
                continue

            async def late(mode: str, rate: float = rate, raw: str = raw) -> dict:
                log(f"round {rnd}: lateness {mode} {rate:.0f}/s for {args.duration}s ({transport})")
                r = await lateness.run_once(
                    cluster,
                    rate=rate,
                    duration=args.duration,
                    lead=args.lead,
                    mode=mode,
                    max_workers=args.workers[0],
                    transport=transport,
                    tag=f"r{rnd}-late-{mode}-{raw}",
                )
                _log_late(r)
                res.add(f"late_{mode}_{raw}", r)
                return r

            if args.lateness_mode == "api":
                if lateness.rate_ok(await late("api")):
                    continue
                log(f"  the API did not sustain {rate:.0f}/s; same rate inserted via SQL")
            await late("sql")


async def logging_round(cluster: Cluster, args: argparse.Namespace, res: Results, rnd: int) -> None:
    """One drain per log mode (order alternating between rounds): what a line per delivery
    costs the node at its full delivery rate."""
    modes = list(LOG_MODES) if rnd % 2 else list(reversed(LOG_MODES))
    for mode in modes:
        log(f"round {rnd}: logging {mode}, 1 node, max_workers {args.workers[0]}, N={args.n}")
        r = await throughput.run_once(
            cluster,
            n=args.n,
            max_workers=args.workers[0],
            nodes=1,
            transport=args.transports[0],
            sink_kind=args.sinks[0],
            tag=f"r{rnd}-log-{mode}",
            extra_env=LOG_MODES[mode],
        )
        log(
            f"  -> {r['deliveries_per_s'] or 0:.0f} deliveries/s, node "
            f"{r['cpu_us_per_delivery'].get('serve')} µs/delivery"
        )
        res.add(f"log_{mode}", r)


def logging_table(res: Results, args: argparse.Namespace) -> tuple[list[str], dict[str, Any]]:
    """Deliveries/s and node CPU per delivery by log mode, with per-round ratios to "off"."""
    if not res.runs.get("log_off"):
        return [], {}
    lines = [
        "",
        f"Logging at the full delivery rate (1 node, max_workers {args.workers[0]}, "
        f"N={args.n}, median of {args.runs} round(s); 'vs off' = median of per-round ratios "
        "to the run with the delivery log off)",
        f"{'log mode':34} {'deliveries/s':>12} {'range':>13} {'vs off':>7} "
        f"{'node µs/delivery':>16} {'vs off':>7}",
    ]
    summ: dict[str, Any] = {}
    labels = {
        "off": "off (RUNLATER_LOG_LEVEL=WARNING)",
        "text": "text, a line per delivery",
        "json": "json, a line per delivery",
    }
    for mode in LOG_MODES:
        key = f"log_{mode}"
        rate = res.values(key, "deliveries_per_s")
        if not rate:
            continue
        cpu = res.med(key, "cpu_us_per_delivery.serve")
        rate_ratio = median(_round_ratios(res, key, "log_off", "deliveries_per_s"))
        cpu_ratio = median(_round_ratios(res, key, "log_off", "cpu_us_per_delivery.serve"))
        summ[key] = {
            "deliveries_per_s": median(rate),
            "runs": rate,
            "node_cpu_us_per_delivery": cpu,
            "ratio_vs_off": rate_ratio,
            "cpu_ratio_vs_off": cpu_ratio,
        }
        lines.append(
            f"{labels[mode]:34} {fmt(median(rate)):>12} {spread(rate):>13} "
            f"{fmt(rate_ratio, 2):>7} {fmt(cpu):>16} {fmt(cpu_ratio, 2):>7}"
        )
    return lines, summ


async def api_round(cluster: Cluster, args: argparse.Namespace, res: Results, rnd: int) -> None:
    """The API benchmark and its baselines, in an order that alternates between rounds."""
    load = {
        "connections": args.api_connections,
        "clients": args.api_clients,
        "duration": args.api_duration,
        "warmup": args.api_warmup,
    }
    runs = ["runlater", *(["runlater_idem"] if args.api_idempotency else []), *api.BARE_MODES]
    for mode in runs if rnd % 2 else list(reversed(runs)):
        log(f"round {rnd}: API {mode} ({args.api_connections} connections, {args.api_duration}s)")
        if mode.startswith("runlater"):
            r = await api.run_once(
                cluster, tag=f"r{rnd}-api-{mode}", idempotency=mode.endswith("idem"), **load
            )
        else:
            r = await api.bare_once(mode, tag=f"r{rnd}-api-{mode}", **load)
        cpu = r["cpu_us_per_request"]
        log(
            f"  -> {r['rps']:.0f} req/s, p50 {r['latency_ms']['p50'] or 0:.1f} p99 "
            f"{r['latency_ms']['p99'] or 0:.1f} ms; CPU µs/request node {cpu.get('serve')} "
            f"pg {cpu.get('postgres')} client {cpu.get('client')}"
            + (f"; statuses {r['statuses']} errors {r['errors']}" if r["errors"] else "")
        )
        res.add(f"api_{mode}", r)
    log(f"round {rnd}: API CPU split in one process (bench.api_split)")
    r = await api.split_once(cluster, tag=f"r{rnd}-api-split")
    log(
        f"  -> bare quart {r['app_bare_quart']} µs, runlater without DB "
        f"{r['app_runlater_no_db']} µs, runlater {r['app_runlater']} µs, crossing "
        f"{r['crossing_select1']} µs (asyncio {r['asyncio_select1']} µs)"
    )
    res.add("api_split", r)
    log(f"round {rnd}: API baseline pgbench insert_task + audit, {args.api_duration}s")
    r = await api.pgbench_once(
        cluster, clients=2, duration=args.api_duration, tag=f"r{rnd}-api-pgbench"
    )
    if not r.get("skipped"):
        log(f"  -> {r['rps']:.0f} tasks/s, Postgres {r['postgres_cpu_us_per_task']} µs/task")
    res.add("api_pgbench", r)


def _rate(raw: str, args: argparse.Namespace, res: Results) -> float | None:
    if raw != "half":
        return float(raw)
    if getattr(args, "half_rate", None):  # fixed once, so every round runs the same rate
        return args.half_rate
    best = res.med(
        tput_key(args.transports[0], args.sinks[0], args.workers[0], 1), "deliveries_per_s"
    )
    if best is None:
        log("lateness at 'half' needs the throughput benchmark: skipped")
        return None
    args.half_rate = float(round(best / 2))
    return args.half_rate


def _log_late(r: dict[str, Any]) -> None:
    lat = r["lateness_ms"]
    created = r["creation"]
    log(
        f"  -> created {created['created']} at {created['achieved_rate']:.0f}/s, delivered "
        f"{r['delivered']}, lateness p50 {lat['p50'] or 0:.1f} p99 {lat['p99'] or 0:.1f} "
        f"max {lat['max'] or 0:.1f} ms"
    )


async def profile_runs(cluster: Cluster, args: argparse.Namespace, res: Results) -> None:
    if not profiling.available():
        log("py-spy not found (pip install py-spy): profile skipped")
        return
    out = harness.RESULTS
    if "api" in args.only:
        log("profile: API POST /api/v1/tasks under py-spy")
        r = await api.run_once(
            cluster,
            connections=args.api_connections,
            clients=args.api_clients,
            duration=args.api_duration,
            warmup=args.api_warmup,
            tag="profile-api",
            profile_dir=out,
        )
        res.add("profile_api", r)
    # The delivery profiles, unless only the API benchmark was asked for.
    if args.only & {"baselines", "pgbench", "throughput", "lateness"} or "api" not in args.only:
        await delivery_profiles(cluster, args, res, out)


async def delivery_profiles(
    cluster: Cluster, args: argparse.Namespace, res: Results, out: Path
) -> None:
    transport, sink = args.transports[0], args.sinks[0]
    log(f"profile: throughput 1 node under py-spy (transport {transport}, sink {sink})")
    r = await throughput.run_once(
        cluster,
        n=args.n,
        max_workers=args.workers[0],
        nodes=1,
        transport=transport,
        sink_kind=sink,
        tag="profile-tput",
        profile_dir=out,
    )
    res.add("profile_tput", r)
    if args.lateness_mode == "api":
        rate = _rate("half", args, res) or 200.0
        log(f"profile: lateness api {rate:.0f}/s under py-spy ({transport})")
        r = await lateness.run_once(
            cluster,
            rate=rate,
            duration=args.duration,
            lead=args.lead,
            mode="api",
            max_workers=args.workers[0],
            transport=transport,
            tag="profile-late",
            profile_dir=out,
        )
        res.add("profile_late", r)
    rate = float(args.rates[-1]) if args.rates[-1] != "half" else 500.0
    log(f"profile: lateness sql {rate:.0f}/s under py-spy ({transport})")
    r = await lateness.run_once(
        cluster,
        rate=rate,
        duration=args.duration,
        lead=args.lead,
        mode="sql",
        max_workers=args.workers[0],
        transport=transport,
        tag="profile-late-sql",
        profile_dir=out,
    )
    res.add("profile_late_sql", r)


def _pct(v: float | None) -> float | None:
    return None if v is None else v * 100


def fmt(v: float | None, digits: int = 0) -> str:
    return "-" if v is None else f"{v:,.{digits}f}"


def spread(values: list[float], digits: int = 0) -> str:
    if len(values) < 2:
        return ""
    return f"{min(values):,.{digits}f}-{max(values):,.{digits}f}"


def _legacy_args(args: argparse.Namespace) -> None:
    """Defaults for JSON written before the transport/sink dimensions (--report)."""
    for name, default in (
        ("transports", ["runlater"]),
        ("sinks", ["python"]),
        ("lateness_mode", "api"),
        ("api_connections", 16),
        ("api_clients", 1),
        ("api_duration", 10.0),
        ("api_warmup", 2.0),
    ):
        if not hasattr(args, name):
            setattr(args, name, default)


def _round_ratios(res: Results, key: str, base: str, path: str) -> list[float]:
    """Per-round ratio key/base (rounds are interleaved: the i-th run of each is round i)."""
    a, b = res.values(key, path), res.values(base, path)
    return [x / y for x, y in zip(a, b, strict=False) if y]


def table(res: Results, args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    _legacy_args(args)
    lines: list[str] = []
    summ: dict[str, Any] = {}
    nproc = os.cpu_count() or 1
    h11 = res.med("http_h11", "rps")
    deliverer = {
        "httpx": res.med("http_deliverer", "rps"),
        "runlater": res.med("http_deliverer-runlater", "rps"),
    }
    pgb = res.med("pgbench_c2", "rows_per_s") or res.med("pgbench_c1", "rows_per_s")
    t0 = args.transports[0]
    w0 = args.workers[0]

    def ratio(v: float | None, base: float | None) -> str:
        return "-" if not v or not base else f"{v / base:.1%}"

    sink_note = ", ".join(args.sinks)
    if any(not key.startswith(("api_", "profile_api", "late_", "log_")) for key in res.runs):
        lines.append(f"Throughput (median of {args.runs} round(s); range min-max)")
        lines.append(
            f"(HTTP baselines at concurrency {args.concurrency} against the {args.sinks[0]} "
            "sink; 'vs httpx' = runlater transport / httpx transport, median of per-round "
            "ratios; 'vs Deliverer' = vs runlater's Deliverer without database on the same "
            "transport; 'other load' = CPU cores used meanwhile by processes outside the "
            "benchmark)"
        )
        head = (
            f"{'benchmark':58} {'per s':>8} {'range':>13} {'vs httpx':>8} {'vs raw HTTP':>11} "
            f"{'vs Deliverer':>12} {'vs pgbench':>10} {'other load':>10}"
        )
        lines += [head, "-" * len(head)]
    rows: list[tuple[str, str, str]] = [
        ("http_h11", "rps", "baseline: raw HTTP loop (trio+h11)"),
        ("http_httpx", "rps", "baseline: httpx.AsyncClient loop (default transport)"),
        ("http_deliverer", "rps", "baseline: Deliverer, no DB, httpx transport"),
        ("http_deliverer-runlater", "rps", "baseline: Deliverer, no DB, runlater transport"),
        ("http_deliverer_c10", "rps", "baseline: Deliverer, no DB, conc. 10 (old)"),
        ("pgbench_c1", "rows_per_s", "baseline: pgbench claim+complete, 1 client"),
        ("pgbench_c2", "rows_per_s", "baseline: pgbench claim+complete, 2 clients"),
    ]
    for sink in args.sinks:
        for t in args.transports:
            rows.append(
                (
                    tput_key(t, sink, w0, 1),
                    "deliveries_per_s",
                    f"1 node, max_workers {w0}, transport {t}, sink {sink}",
                )
            )
    for w in args.workers[1:]:
        rows.append(
            (
                tput_key(t0, args.sinks[0], w, 1),
                "deliveries_per_s",
                f"1 node, max_workers {w}, transport {t0}, sink {args.sinks[0]}",
            )
        )
    if args.two_nodes:
        rows.append(
            (
                tput_key(t0, args.sinks[0], w0, 2),
                "deliveries_per_s",
                f"2 nodes x max_workers {w0}, transport {t0}, sink {args.sinks[0]}",
            )
        )
    for nodes in (1, 2):
        key = tput_key(t0, args.sinks[0], w0, nodes) + "_claimidx"
        if res.runs.get(key):
            rows.append(
                (
                    key,
                    "deliveries_per_s",
                    f"{nodes} node(s), transport {t0}, sink {args.sinks[0]}, + claim index (exp.)",
                )
            )
    # JSON from before the transport dimension: its keys, read as they were.
    for key in sorted(res.runs):
        if re.fullmatch(r"tput_w\d+_n\d+", key):
            rows.append((key, "deliveries_per_s", f"{key} (before the transport dimension)"))
    for key, path, label in rows:
        values = res.values(key, path)
        if not values:
            continue
        v = median(values)
        summ[key] = {"median_per_s": v, "runs": values}
        if key.startswith("tput"):
            first = res.runs[key][0]
            transport = first.get("transport", "httpx")
            sink = first.get("sink", "python")
            vs_httpx_runs = None
            if transport != "httpx":
                base = key.replace(f"tput_{transport}_", "tput_httpx_", 1)
                vs_httpx_runs = _round_ratios(res, key, base, path)
            vs_httpx = median(vs_httpx_runs or [])
            cpu = {
                k: median(res.values(key, f"cpu_us_per_delivery.{k}"))
                for k in ("serve", "postgres", "sink", "postgres_insert", "bench_orchestrator")
            }
            total = sum(cpu[k] or 0 for k in ("serve", "postgres", "sink"))
            summ[key].update(
                transport=transport,
                sink=sink,
                nodes=first.get("nodes"),
                max_workers=first.get("max_workers"),
                ratio_vs_httpx_transport=vs_httpx,
                ratio_vs_httpx_transport_runs=vs_httpx_runs,
                ratio_raw_http=v / h11 if h11 else None,
                ratio_deliverer=(v / deliverer[transport] if deliverer.get(transport) else None),
                ratio_pgbench=v / pgb if pgb else None,
                cpu_us_per_delivery=cpu,
                # What the measured CPU per delivery allows on this machine: one node is one
                # Python thread (≤ 1 core each); node + Postgres + sink share nproc cores.
                ceiling_per_s={
                    "node_one_core": 1e6 * (first.get("nodes") or 1) / cpu["serve"]
                    if cpu["serve"]
                    else None,
                    "machine": nproc * 1e6 / total if total else None,
                    "machine_cores": nproc,
                },
                claim=(
                    {
                        q: res.med(key, f"claim.{q}")
                        for q in ("calls", "rows_per_call", "mean_ms", "exec_us_per_row")
                    }
                    if res.values(key, "claim.calls")
                    else None
                ),
                node_busy_cores=res.med(key, "node_busy_cores"),
                all_success=all(r.get("all_success", True) for r in res.runs[key]),
                pg_xacts_per_delivery=res.med(key, "pg_xacts_per_delivery"),
                idle_serve_cpu_fraction=res.med(key, "idle_serve_cpu_fraction"),
                first_arrival_ms=res.med(key, "first_arrival_ms"),
            )
            vs = "-" if vs_httpx is None else f"{vs_httpx:.2f}x"
            lines.append(
                f"{label:58} {fmt(v):>8} {spread(values):>13} {vs:>8} {ratio(v, h11):>11} "
                f"{ratio(v, deliverer.get(transport)):>12} {ratio(v, pgb):>10} "
                f"{fmt(res.other_load(key), 2):>10}"
            )
        else:
            lines.append(
                f"{label:58} {fmt(v):>8} {spread(values):>13} {'':>8} {'':>11} {'':>12} "
                f"{'':>10} {fmt(res.other_load(key), 2):>10}"
            )
        summ[key]["other_load_cores"] = res.other_load(key)
    cpu_rows = [k for k, _, _ in rows if k.startswith("tput") and res.runs.get(k)]
    if cpu_rows:
        lines.append("")
        lines.append(
            "CPU per delivery (µs, median): node = the serve process(es), postgres = all "
            "backends from the commit of the N tasks on (their insert, 'ins', apart), sink = "
            f"{sink_note}; ceilings from these: node = 1e6 / node µs (one Python thread per "
            f"node), machine = {nproc} cores x 1e6 / (node + postgres + sink)"
        )
        for key in cpu_rows:
            c = summ[key]["cpu_us_per_delivery"]
            ceil = summ[key]["ceiling_per_s"]
            total = sum(c[k] or 0 for k in ("serve", "postgres", "sink"))
            lines.append(
                f"  {key:30} node {fmt(c['serve']):>6}  postgres {fmt(c['postgres']):>5}"
                f" (ins {fmt(c['postgres_insert']):>3})  sink {fmt(c['sink']):>5}"
                f"  = {fmt(total):>6}   ceiling node "
                f"{fmt(ceil['node_one_core']):>6}/s machine {fmt(ceil['machine']):>6}/s   "
                f"xacts/delivery {fmt(summ[key]['pg_xacts_per_delivery'], 2)}   idle node CPU "
                f"{fmt(_pct(summ[key]['idle_serve_cpu_fraction']), 1)}%"
                + ("" if summ[key]["all_success"] else "   NOT ALL SUCCESS")
            )
            claim = summ[key]["claim"]
            if claim and c["serve"] and summ[key]["nodes"] == 1:
                # Claims run one at a time and the workers mostly wait for them: the node's CPU
                # and the claim's execution time per row add up (a serial estimate).
                serial = 1e6 / (c["serve"] + claim["exec_us_per_row"])
                summ[key]["ceiling_per_s"]["serial_node_plus_claim"] = serial
                lines.append(
                    f"  {'':30} node busy {fmt(summ[key]['node_busy_cores'], 2)} cores; claims "
                    f"{fmt(claim['calls'])} x {fmt(claim['mean_ms'], 1)} ms, "
                    f"{fmt(claim['rows_per_call'], 1)} rows each = "
                    f"{fmt(claim['exec_us_per_row'])} µs/row; serial estimate "
                    f"1e6 / (node + claim per row) = {fmt(serial)}/s"
                )
        for key in (
            "http_h11",
            "http_httpx",
            "http_deliverer",
            "http_deliverer-runlater",
            "http_deliverer_c10",
        ):
            if res.runs.get(key):
                lines.append(
                    f"  {key:30} client {fmt(res.med(key, 'client_cpu_us_per_req')):>5}"
                    f"  sink {fmt(res.med(key, 'sink_cpu_us_per_req')):>5}"
                )
    late_keys = [k for k in res.runs if k.startswith("late_")]
    if late_keys:
        lines.append("")
        lines.append(
            f"Lateness = sink arrival - due time, ms (median over rounds of each "
            f"round's percentile); lead {args.lead}s, {args.duration:.0f}s per run; python sink; "
            "delivered = delivered/created, all rounds"
        )
        head = (
            f"{'run':22} {'transport':>9} {'rate':>6} {'created/s':>9} {'p50':>8} {'p95':>8} "
            f"{'p99':>8} {'max':>8} {'delivered':>13} {'node CPU':>8} {'other load':>10}"
        )
        lines += [head, "-" * len(head)]
        for key in late_keys:
            rs = res.runs[key]
            lat = {q: res.med(key, f"lateness_ms.{q}") for q in ("p50", "p95", "p99", "max")}
            created = res.med(key, "creation.achieved_rate")
            delivered = sum(r["delivered"] for r in rs)
            requested = sum(r["creation"]["requested"] for r in rs)
            created_n = sum(r["creation"]["created"] for r in rs)
            cpu = res.med(key, "cpu_s.serve")
            wall = res.med(key, "cpu_s.wall_s")
            transport = rs[0].get("transport", "httpx")
            summ[key] = {
                "rate": rs[0]["rate"],
                "mode": rs[0]["mode"],
                "transport": transport,
                "sink": rs[0].get("sink", "python"),
                "lateness_ms": lat,
                "lateness_p99_runs": res.values(key, "lateness_ms.p99"),
                "created_per_s": created,
                "delivered": delivered,
                "requested": requested,
                "created": created_n,
                "serve_cpu_fraction": (cpu / wall) if cpu and wall else None,
                "cpu_us_per_task": {
                    k: res.med(key, f"cpu_us_per_task.{k}") for k in ("serve", "postgres", "sink")
                },
            }
            lines.append(
                f"{key:22} {transport:>9} {rs[0]['rate']:>6.0f} {fmt(created):>9} "
                f"{fmt(lat['p50'], 1):>8} {fmt(lat['p95'], 1):>8} {fmt(lat['p99'], 1):>8} "
                f"{fmt(lat['max'], 1):>8} {delivered:>6}/{created_n:<6} "
                f"{'-' if not cpu or not wall else f'{cpu / wall:.0%}':>8} "
                f"{fmt(res.other_load(key), 2):>10}"
            )
            summ[key]["other_load_cores"] = res.other_load(key)
    api_lines, api_summ = api.table(res, args, nproc)
    if api_lines:
        lines += ["", *api_lines] if lines else api_lines
        summ.update(api_summ)
    for key in ("profile_tput", "profile_late", "profile_late_sql", "profile_api"):
        for r in res.runs.get(key, []):
            prof = r.get("profile") or {}
            if not prof.get("samples"):
                continue
            lines.append("")
            if key == "profile_api":
                lines += api.profile_lines(r)
                continue
            what = f"transport {r.get('transport', '?')}, sink {r.get('sink', '?')}"
            if r.get("deliveries_per_s"):
                what += f", {r['deliveries_per_s']:.0f} deliveries/s"
            if r.get("rate"):
                what += f", {r['rate']:.0f} tasks/s {r['mode']}"
            lines.append(
                f"Where the node's CPU goes ({key}: {what}; py-spy, {prof['samples']} samples; "
                f"flame graph {prof['svg']})"
            )
            for item in prof["components_pct"]:
                lines.append(f"  {item['pct']:5.1f}%  {item['frame']}")
            if prof.get("path_breakdown_pct"):
                lines.append("  finer, exclusive split:")
                for item in prof["path_breakdown_pct"]:
                    lines.append(f"  {item['pct']:5.1f}%  {item['frame']}")
            if prof.get("delivery_path_pct"):
                lines.append("  delivery path (inclusive, nested):")
                for frame, pct in prof["delivery_path_pct"].items():
                    lines.append(f"  {pct:5.1f}%  {frame}")
            extra = []
            if prof.get("httpcore_pool_bookkeeping_pct"):
                extra.append(f"httpcore pool bookkeeping {prof['httpcore_pool_bookkeeping_pct']}%")
            if prof.get("asyncpg_reset_on_release_pct"):
                extra.append(f"asyncpg reset on release {prof['asyncpg_reset_on_release_pct']}%")
            if extra:
                lines.append(f"  ({', '.join(extra)})")
            lines.append("  top self time:")
            for item in prof["self_top"][:12]:
                lines.append(f"  {item['pct']:5.1f}%  {item['frame']}")
            lines.append("  top inclusive (engine/library frames):")
            for item in prof["inclusive_top"][:20]:
                lines.append(f"  {item['pct']:5.1f}%  {item['frame']}")
    log_lines, log_summ = logging_table(res, args)
    lines += log_lines
    summ.update(log_summ)
    return "\n".join(lines), summ


async def amain(args: argparse.Namespace) -> int:
    harness.KEEP_LOGS = args.keep_logs
    harness.RESULTS.mkdir(parents=True, exist_ok=True)
    started = datetime.now(UTC)
    out_path = args.out or str(harness.RESULTS / f"bench-{started:%Y%m%d-%H%M%S}.json")
    doc: dict[str, Any] = {
        "started": started.isoformat(),
        "machine": harness.machine_info(),
        "args": {k: (sorted(v) if isinstance(v, set) else v) for k, v in vars(args).items()},
    }
    res = Results()
    cluster = Cluster()
    t0 = time.time()
    text = ""
    try:
        log("starting throwaway Postgres cluster")
        cluster.start()
        doc["postgres"] = cluster.server_version()
        for rnd in range(1, args.runs + 1):
            await one_round(cluster, args, res, rnd)
        if "profile" in args.only:
            await profile_runs(cluster, args, res)
    finally:
        with contextlib.suppress(Exception):
            cluster.destroy()
        doc["elapsed_s"] = time.time() - t0
        text, summ = table(res, args)
        doc["summary"] = summ
        doc["runs"] = res.runs
        # Blocking writes are fine here: nothing else runs on this loop any more.
        Path(out_path).write_text(json.dumps(doc, indent=2, default=str))  # noqa: ASYNC240
        shutil.copyfile(out_path, harness.RESULTS / "latest.json")
        (harness.RESULTS / "latest.txt").write_text(text + "\n")
    m = doc["machine"]
    print(
        f"\nRunlater bench {started:%Y-%m-%d %H:%M} UTC — {m['nproc']} CPU(s) {m['cpu_model']}, "
        f"Python {m['python']}, {doc.get('postgres', '?')}; {doc['elapsed_s']:.0f}s\n"
    )
    print(text)
    print(f"\nJSON: {out_path}")
    return 0


def report(path: str) -> int:
    doc = json.loads(Path(path).read_text())
    args = argparse.Namespace(**doc["args"])
    res = Results()
    res.runs = doc["runs"]
    # Profiles are summarized again from their collapsed stacks (when still there), so a
    # change to the buckets applies to saved runs too.
    for key in ("profile_tput", "profile_late", "profile_late_sql", "profile_api"):
        for r in res.runs.get(key, []):
            raw = Path((r.get("profile") or {}).get("collapsed") or "/nonexistent")
            if raw.exists():
                r["profile"].update(profiling.summarize(raw))
    text, _ = table(res, args)
    m = doc["machine"]
    print(
        f"Runlater bench {doc['started'][:16]} UTC - {m['nproc']} CPU(s) {m['cpu_model']}, "
        f"Python {m['python']}, {doc.get('postgres', '?')}; {doc['elapsed_s']:.0f}s\n"
    )
    print(text)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.report:
        return report(args.report)
    return asyncio.run(amain(args))


if __name__ == "__main__":
    sys.exit(main())
