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
import shutil
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import harness, lateness, pgbench, profiling, throughput
from bench.harness import Cluster, log, median

ALL = ("baselines", "pgbench", "throughput", "lateness", "profile")


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
    p.add_argument("--concurrency", type=int, default=50, help="HTTP baseline concurrency")
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
    default_only = [b for b in ALL if not (q and b == "profile")]
    args.only = {s.strip() for s in (args.only or ",".join(default_only)).split(",") if s.strip()}
    unknown = args.only - set(ALL)
    if unknown:
        p.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
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
    if "baselines" in args.only:
        # httpx's pool gets slower per request as concurrency grows, so the client library
        # is measured at the node's concurrency and at 10 (about its best on this machine).
        for mode, count, conc in (
            ("h11", max(n, 5000), c),
            ("httpx", min(n, 3000), c),
            ("deliverer", min(n, 3000), c),
            ("deliverer", min(n, 3000), 10),
        ):
            log(f"round {rnd}: HTTP baseline {mode} ({count} requests, concurrency {conc})")
            r = await throughput.http_baseline(
                mode, count=count, concurrency=conc, tag=f"r{rnd}-http-{mode}-c{conc}"
            )
            log(f"  -> {r['rps']:.0f} req/s")
            res.add(f"http_{mode}" + ("" if conc == c else f"_c{conc}"), r)
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
        configs = [(w, 1) for w in args.workers]
        if args.two_nodes:
            configs.append((args.workers[0], 2))
        for workers, nodes in configs:
            log(f"round {rnd}: throughput {nodes} node(s), max_workers {workers}, N={n}")
            r = await throughput.run_once(
                cluster,
                n=n,
                max_workers=workers,
                nodes=nodes,
                tag=f"r{rnd}-tput-w{workers}-n{nodes}",
            )
            log(
                f"  -> {r['deliveries_per_s'] or 0:.0f} deliveries/s "
                f"(recorded in {r['recorded_s']}s, dup {r['duplicates']})"
            )
            res.add(f"tput_w{workers}_n{nodes}", r)
    if "lateness" in args.only:
        for raw in args.rates:
            rate = _rate(raw, args, res)
            if rate is None:
                continue
            log(f"round {rnd}: lateness api {rate:.0f}/s for {args.duration}s")
            r = await lateness.run_once(
                cluster,
                rate=rate,
                duration=args.duration,
                lead=args.lead,
                mode="api",
                max_workers=args.workers[0],
                tag=f"r{rnd}-late-api-{raw}",
            )
            _log_late(r)
            res.add(f"late_api_{raw}", r)
            if not lateness.rate_ok(r):
                log(f"  the API did not sustain {rate:.0f}/s; same rate inserted via SQL")
                r = await lateness.run_once(
                    cluster,
                    rate=rate,
                    duration=args.duration,
                    lead=args.lead,
                    mode="sql",
                    max_workers=args.workers[0],
                    tag=f"r{rnd}-late-sql-{raw}",
                )
                _log_late(r)
                res.add(f"late_sql_{raw}", r)


def _rate(raw: str, args: argparse.Namespace, res: Results) -> float | None:
    if raw != "half":
        return float(raw)
    if getattr(args, "half_rate", None):  # fixed once, so every round runs the same rate
        return args.half_rate
    best = res.med(f"tput_w{args.workers[0]}_n1", "deliveries_per_s")
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
    log("profile: throughput 1 node under py-spy")
    r = await throughput.run_once(
        cluster, n=args.n, max_workers=args.workers[0], nodes=1, tag="profile-tput", profile_dir=out
    )
    res.add("profile_tput", r)
    rate = _rate("half", args, res) or 200.0
    log(f"profile: lateness api {rate:.0f}/s under py-spy")
    r = await lateness.run_once(
        cluster,
        rate=rate,
        duration=args.duration,
        lead=args.lead,
        mode="api",
        max_workers=args.workers[0],
        tag="profile-late",
        profile_dir=out,
    )
    res.add("profile_late", r)
    rate = float(args.rates[-1]) if args.rates[-1] != "half" else 500.0
    log(f"profile: lateness sql {rate:.0f}/s under py-spy")
    r = await lateness.run_once(
        cluster,
        rate=rate,
        duration=args.duration,
        lead=args.lead,
        mode="sql",
        max_workers=args.workers[0],
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


def table(res: Results, args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    lines: list[str] = []
    summ: dict[str, Any] = {}
    h11 = res.med("http_h11", "rps")
    deliverer = (
        max(res.med("http_deliverer", "rps") or 0, res.med("http_deliverer_c10", "rps") or 0)
        or None
    )
    pgb = res.med("pgbench_c2", "rows_per_s") or res.med("pgbench_c1", "rows_per_s")

    def ratio(v: float | None, base: float | None) -> str:
        return "-" if not v or not base else f"{v / base:.1%}"

    lines.append(f"Throughput (median of {args.runs} round(s); range min-max)")
    head = (
        f"{'benchmark':44} {'per s':>9} {'range':>15} {'vs raw HTTP':>11} "
        f"{'vs Deliverer':>12} {'vs pgbench':>10} {'other load':>10}"
    )
    lines.append(
        f"(baselines at concurrency {args.concurrency} unless noted; 'vs Deliverer' uses "
        "the faster Deliverer baseline; 'other load' = CPU cores used meanwhile by processes "
        "outside the benchmark)"
    )
    lines += [head, "-" * len(head)]
    rows = [
        ("http_h11", "rps", "baseline: raw HTTP loop (trio+h11)"),
        ("http_httpx", "rps", "baseline: httpx.AsyncClient loop"),
        ("http_deliverer", "rps", "baseline: runlater Deliverer, no DB"),
        ("http_deliverer_c10", "rps", "baseline: runlater Deliverer, no DB, conc. 10"),
        ("pgbench_c1", "rows_per_s", "baseline: pgbench claim+complete, 1 client"),
        ("pgbench_c2", "rows_per_s", "baseline: pgbench claim+complete, 2 clients"),
    ]
    for w in args.workers:
        rows.append((f"tput_w{w}_n1", "deliveries_per_s", f"runlater 1 node, max_workers {w}"))
    if args.two_nodes:
        rows.append(
            (
                f"tput_w{args.workers[0]}_n2",
                "deliveries_per_s",
                f"runlater 2 nodes, max_workers {args.workers[0]} each",
            )
        )
    for key, path, label in rows:
        values = res.values(key, path)
        if not values:
            continue
        v = median(values)
        summ[key] = {"median_per_s": v, "runs": values}
        if key.startswith("tput"):
            summ[key].update(
                ratio_raw_http=v / h11 if h11 else None,
                ratio_deliverer=v / deliverer if deliverer else None,
                ratio_pgbench=v / pgb if pgb else None,
                cpu_us_per_delivery={
                    k: median(res.values(key, f"cpu_us_per_delivery.{k}"))
                    for k in ("serve", "postgres", "sink")
                },
                pg_xacts_per_delivery=res.med(key, "pg_xacts_per_delivery"),
                idle_serve_cpu_fraction=res.med(key, "idle_serve_cpu_fraction"),
                first_arrival_ms=res.med(key, "first_arrival_ms"),
            )
            lines.append(
                f"{label:44} {fmt(v):>9} {spread(values):>15} {ratio(v, h11):>11} "
                f"{ratio(v, deliverer):>12} {ratio(v, pgb):>10} {fmt(res.other_load(key), 2):>10}"
            )
        else:
            lines.append(
                f"{label:44} {fmt(v):>9} {spread(values):>15} {'':>11} {'':>12} {'':>10} "
                f"{fmt(res.other_load(key), 2):>10}"
            )
        summ[key]["other_load_cores"] = res.other_load(key)
    cpu_rows = [k for k, _, _ in rows if k.startswith("tput") and res.runs.get(k)]
    if cpu_rows:
        lines.append("")
        lines.append("CPU per delivery (µs, median): serve = the node(s), postgres = all backends")
        for key in cpu_rows:
            c = summ[key]["cpu_us_per_delivery"]
            lines.append(
                f"  {key:18} serve {fmt(c['serve']):>6}  postgres {fmt(c['postgres']):>6}"
                f"  sink {fmt(c['sink']):>5}   xacts/delivery "
                f"{fmt(summ[key]['pg_xacts_per_delivery'], 2)}   idle node CPU "
                f"{fmt(_pct(summ[key]['idle_serve_cpu_fraction']), 1)}%"
            )
        for key in ("http_h11", "http_httpx", "http_deliverer", "http_deliverer_c10"):
            if res.runs.get(key):
                lines.append(
                    f"  {key:18} client {fmt(res.med(key, 'client_cpu_us_per_req')):>5}"
                    f"  sink {fmt(res.med(key, 'sink_cpu_us_per_req')):>5}"
                )
    late_keys = [k for k in res.runs if k.startswith("late_")]
    if late_keys:
        lines.append("")
        lines.append(
            f"Lateness = sink arrival - due time, ms (median over rounds of each "
            f"round's percentile); lead {args.lead}s, {args.duration:.0f}s per run; "
            "delivered = delivered/created, all rounds"
        )
        head = (
            f"{'run':22} {'rate':>6} {'created/s':>9} {'p50':>8} {'p95':>8} {'p99':>8} "
            f"{'max':>8} {'delivered':>11} {'serve CPU':>9} {'other load':>10}"
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
            summ[key] = {
                "rate": rs[0]["rate"],
                "mode": rs[0]["mode"],
                "lateness_ms": lat,
                "lateness_p99_runs": res.values(key, "lateness_ms.p99"),
                "created_per_s": created,
                "delivered": delivered,
                "requested": requested,
                "created": created_n,
                "serve_cpu_fraction": (cpu / wall) if cpu and wall else None,
            }
            lines.append(
                f"{key:22} {rs[0]['rate']:>6.0f} {fmt(created):>9} {fmt(lat['p50'], 1):>8} "
                f"{fmt(lat['p95'], 1):>8} {fmt(lat['p99'], 1):>8} {fmt(lat['max'], 1):>8} "
                f"{delivered:>5}/{created_n:<5} "
                f"{'-' if not cpu or not wall else f'{cpu / wall:.0%}':>9} "
                f"{fmt(res.other_load(key), 2):>10}"
            )
            summ[key]["other_load_cores"] = res.other_load(key)
    for key in ("profile_tput", "profile_late", "profile_late_sql"):
        for r in res.runs.get(key, []):
            prof = r.get("profile") or {}
            if not prof.get("samples"):
                continue
            lines.append("")
            lines.append(
                f"Where the node's CPU goes ({key}, py-spy, {prof['samples']} samples; "
                f"flame graph {prof['svg']})"
            )
            for item in prof["components_pct"]:
                lines.append(f"  {item['pct']:5.1f}%  {item['frame']}")
            lines.append(
                f"  (httpcore pool bookkeeping {prof['httpcore_pool_bookkeeping_pct']}%, "
                f"asyncpg reset on release {prof['asyncpg_reset_on_release_pct']}%)"
            )
            lines.append("  top self time:")
            for item in prof["self_top"][:8]:
                lines.append(f"  {item['pct']:5.1f}%  {item['frame']}")
            lines.append("  top inclusive (engine/library frames):")
            for item in prof["inclusive_top"][:12]:
                lines.append(f"  {item['pct']:5.1f}%  {item['frame']}")
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
