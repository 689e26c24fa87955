"""Soak: one node's memory over a long run of steady mixed load (``python -m bench.soak``).

A real ``runlater serve`` on a fresh database, a sink in its own process, and a load generator
in this process, all at a steady rate for ``--minutes`` (default 30):

- ``POST /api/v1/tasks`` due at once (``--create-rate``/s), each delivered to the sink — the
  API and the delivery path, with their database calls;
- ``GET /api/v1/tasks`` (``--read-rate``/s), ``GET /health`` and ``GET /health/ready`` (1/s
  each);
- meanwhile the node's own ticks: leader lease, rescuer, janitor, listener health pings.

The node's RSS (``/proc/<pid>/status``) is sampled every ``--sample-s``. After ``--warmup-min``
the curve must be flat: the table shows RSS every few minutes, and the least-squares slope
after warm-up in MiB per hour, with the growth as a ratio of the RSS at the end of warm-up.
``--out`` writes the samples as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx

from bench import harness
from bench.harness import Cluster, Processes, log, percentile


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def slope_per_hour(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (seconds, MiB), in MiB per hour."""
    if len(points) < 2:
        return None
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    var = sum((t - mean_t) ** 2 for t, _ in points)
    if var == 0:
        return None
    cov = sum((t - mean_t) * (v - mean_v) for t, v in points)
    return cov / var * 3600


async def _paced(rate: float, until: float, call: Any) -> None:
    """Call ``call()`` ``rate`` times a second until ``until`` (fire and forget, bounded)."""
    interval = 1.0 / rate
    next_at = time.monotonic()
    pending: set[asyncio.Task[Any]] = set()
    while time.monotonic() < until:
        task = asyncio.create_task(call())
        pending.add(task)
        task.add_done_callback(pending.discard)
        next_at += interval
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
    if pending:
        await asyncio.wait(pending)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    cluster = Cluster()
    cluster.start()
    procs = Processes()
    latencies: dict[str, list[float]] = {}
    statuses: dict[str, dict[int, int]] = {}
    samples: list[tuple[float, float]] = []
    try:
        with harness.workdir("soak") as work:
            dsn = await cluster.new_database("soak")
            harness.migrate(dsn)
            org = harness.bootstrap(dsn)
            kind = "nginx" if harness.nginx_binary() else "python"
            sink = harness.start_sink_of(procs, kind, work)
            node, port = harness.start_serve(procs, dsn, max_workers=50, workdir=work)
            base = f"http://127.0.0.1:{port}"
            target = f"http://127.0.0.1:{sink.port}/soak"
            started = time.monotonic()
            until = started + args.minutes * 60
            limits = httpx.Limits(max_connections=64, max_keepalive_connections=32)
            headers = {"Authorization": f"Bearer {org.api_key}"}
            async with httpx.AsyncClient(
                base_url=base, headers=headers, timeout=30, limits=limits
            ) as http:

                def timed(name: str, method: str, path: str, **kw: Any) -> Any:
                    async def call() -> None:
                        t0 = time.monotonic()
                        try:
                            reply = await http.request(method, path, **kw)
                            status = reply.status_code
                        except httpx.HTTPError:
                            status = 0
                        latencies.setdefault(name, []).append((time.monotonic() - t0) * 1000)
                        counts = statuses.setdefault(name, {})
                        counts[status] = counts.get(status, 0) + 1

                    return call

                async def sample() -> None:
                    while time.monotonic() < until:
                        samples.append((time.monotonic() - started, rss_mib(node.pid)))
                        minute = samples[-1][0] / 60
                        if len(samples) % max(1, int(300 / args.sample_s)) == 1:
                            log(f"soak: {minute:5.1f} min, node RSS {samples[-1][1]:.1f} MiB")
                        await asyncio.sleep(args.sample_s)

                await asyncio.gather(
                    sample(),
                    _paced(
                        args.create_rate,
                        until,
                        timed("create", "POST", "/api/v1/tasks", json={"url": target}),
                    ),
                    _paced(args.read_rate, until, timed("list", "GET", "/api/v1/tasks?limit=5")),
                    _paced(1.0, until, timed("health", "GET", "/health")),
                    _paced(1.0, until, timed("ready", "GET", "/health/ready")),
                )
            samples.append((time.monotonic() - started, rss_mib(node.pid)))
            conn = await asyncpg.connect(dsn)
            try:
                delivered = await conn.fetchval(
                    "select count(*) from executions where status = 'success'"
                )
            finally:
                await conn.close()
    finally:
        procs.close()
        cluster.destroy()

    warm = args.warmup_min * 60
    after = [(t, v) for t, v in samples if t >= warm]
    slope = slope_per_hour(after)
    at_warm = after[0][1] if after else None
    result = {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": harness.machine_info(),
        "minutes": args.minutes,
        "warmup_min": args.warmup_min,
        "rates_per_s": {"create": args.create_rate, "list": args.read_rate, "health": 1.0},
        "delivered": delivered,
        "samples": [{"s": round(t, 1), "rss_mib": round(v, 2)} for t, v in samples],
        "rss_mib": {
            "start": round(samples[0][1], 1),
            "end_of_warmup": round(at_warm, 1) if at_warm else None,
            "end": round(samples[-1][1], 1),
            "max_after_warmup": round(max(v for _, v in after), 1) if after else None,
        },
        "slope_mib_per_hour_after_warmup": round(slope, 2) if slope is not None else None,
        "growth_after_warmup_ratio": (
            round((samples[-1][1] - at_warm) / at_warm, 4) if at_warm else None
        ),
        "requests": {
            name: {
                "count": len(values),
                "p50_ms": round(percentile(values, 0.5) or 0, 1),
                "p99_ms": round(percentile(values, 0.99) or 0, 1),
                "statuses": statuses.get(name, {}),
            }
            for name, values in latencies.items()
        },
    }
    return result


def print_table(result: dict[str, Any]) -> None:
    print(f"\nsoak: {result['minutes']} min, warm-up {result['warmup_min']} min")
    print(f"{'minute':>7} {'RSS MiB':>9}")
    step = max(1, len(result["samples"]) // 12)
    for point in [*result["samples"][::step], result["samples"][-1]]:
        print(f"{point['s'] / 60:7.1f} {point['rss_mib']:9.1f}")
    rss = result["rss_mib"]
    print(
        f"RSS start {rss['start']} MiB, end of warm-up {rss['end_of_warmup']} MiB, "
        f"end {rss['end']} MiB, max after warm-up {rss['max_after_warmup']} MiB"
    )
    print(
        f"slope after warm-up {result['slope_mib_per_hour_after_warmup']} MiB/h, growth "
        f"after warm-up {result['growth_after_warmup_ratio']} of the warm RSS"
    )
    print(f"deliveries recorded as success: {result['delivered']}")
    for name, r in result["requests"].items():
        print(
            f"{name:>7}: {r['count']} requests, p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms, "
            f"statuses {r['statuses']}"
        )


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=30.0)
    p.add_argument("--warmup-min", type=float, default=5.0)
    p.add_argument("--sample-s", type=float, default=10.0)
    p.add_argument("--create-rate", type=float, default=40.0, help="task creations per s")
    p.add_argument("--read-rate", type=float, default=10.0, help="task list reads per s")
    p.add_argument("--out", help="JSON path (default bench/results/soak-<time>.json)")
    args = p.parse_args(argv)
    result = asyncio.run(run(args))
    print_table(result)
    harness.write_result("soak", result, args.out)


if __name__ == "__main__":
    main()
