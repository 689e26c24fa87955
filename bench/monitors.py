"""Heartbeat monitors at scale (``python -m bench.monitors``).

Two parts, on one throwaway cluster:

**tick** — ``--monitors`` (10,000) heartbeat monitors of one organization, all up and watched
(written by SQL the way pings leave them: a last ping, the next expected one and the deadline
spread over ``SPREAD_S``). The leader's ``Monitor.run_once(now)`` is timed in-process (the
store through trio-asyncio, as in a node), ``--rounds`` times per case:

- ``quiet``: nothing due — the common tick;
- ``1 %``: 1 % of the monitors past their deadline (marked down, then put back for the next
  round);
- ``all``: every monitor past its deadline at once (ticks of ``BATCH`` until none is left).

Baseline in the same run: the same question answered by a sequential scan (``select ... from
monitors where status in ('new','up') and enabled and coalesce(started_at + grace,
next_expected_at + grace) <= now``), what a tick costs without the deadline column and its
partial index.

**ping** — one ``runlater serve`` node (rate limits off), ``bench.api_load`` posting to the
ping URLs of ``--connections`` monitors (one per connection, so no two connections wait on one
row), closed loop for ``--duration`` s, against the bare quart-trio route of
``bench.bare_api`` (reads the body, answers "OK", no database) with the same load generator
in the same run. Pings per second and latency percentiles of both, and the node's CPU per
ping.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import trio_asyncio

from bench import harness
from bench.api import _drive
from bench.harness import CpuMeter, Processes, log, summary
from runlater.actors.monitor import BATCH, Monitor
from runlater.clock import ManualClock
from runlater.store.postgres import Store

SPREAD_S = 3600

MONITORS_SQL = """
insert into monitors (organization_id, name, ping_token, badge_token, schedule_type,
                      interval_seconds, grace_period_seconds, status, last_ping_at,
                      last_ping_kind, next_expected_at, down_at)
select $1::uuid, 'job-' || lpad(i::text, 6, '0'), gen_random_uuid(),
       replace(gen_random_uuid()::text, '-', ''), 'interval', 3600, 60, 'up',
       $2::timestamptz - interval '1 hour', 'success',
       $2::timestamptz + make_interval(secs => (i * $4::float8 / $3)),
       $2::timestamptz + make_interval(secs => (i * $4::float8 / $3) + 60)
from generate_series(1, $3) as i
"""
# Put marked monitors back (up, watched, deadlines as before) for the next round.
RESET_SQL = """
update monitors set status = 'up', next_expected_at = $1::timestamptz
        + make_interval(secs => (substr(name, 5)::int * $3::float8 / $2)),
    down_at = $1::timestamptz + make_interval(secs => (substr(name, 5)::int * $3::float8 / $2)
        + 60),
    consecutive_failures = 0, failure_notified = false
where status = 'down'
"""
SCAN_SQL = """
select id from monitors
where status in ('new', 'up') and enabled
  and coalesce(started_at + make_interval(secs => grace_period_seconds),
               next_expected_at + make_interval(secs => grace_period_seconds)) <= $1
"""


async def _tick_part(dsn: str, org_id: str, args: argparse.Namespace) -> dict[str, Any]:
    base = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    conn = await trio_asyncio.aio_as_trio(asyncpg.connect)(dsn)

    async def sql(query: str, *params: Any) -> Any:
        return await trio_asyncio.aio_as_trio(conn.execute)(query, *params)

    await sql(MONITORS_SQL, org_id, base, args.monitors, SPREAD_S)
    await sql("vacuum analyze monitors")
    store = await Store.open(dsn, pool_size=4)
    monitor = Monitor(store, ManualClock(base), interval_s=5)
    cases: dict[str, dict[str, Any]] = {}
    # The deadline of monitor i is base + i * SPREAD/N + 60: "now" picks how many are due.
    due_1pct = base + timedelta(seconds=SPREAD_S * 0.01 + 60)
    due_all = base + timedelta(seconds=SPREAD_S + 61)
    try:
        for name, now in (("quiet", base), ("1 %", due_1pct), ("all", due_all)):
            times, marked_counts, statements = [], [], []
            for _ in range(args.rounds):
                t0 = time.perf_counter()
                marked = 0
                passes = 0
                while True:
                    tick = await monitor.run_once(now)
                    marked += len(tick.marked)
                    passes += 1
                    if len(tick.marked) < BATCH:
                        break
                times.append((time.perf_counter() - t0) * 1000)
                marked_counts.append(marked)
                statements.append(passes)
                await sql(RESET_SQL, base, args.monitors, SPREAD_S)
                # A mass outage is a one-off: each round starts from a vacuumed table, not
                # from the dead rows of the rounds before (untimed).
                await sql("vacuum analyze monitors")
            scan = []
            for _ in range(args.rounds):
                t0 = time.perf_counter()
                await trio_asyncio.aio_as_trio(conn.fetch)(SCAN_SQL, now)
                scan.append((time.perf_counter() - t0) * 1000)
            cases[name] = {
                "tick_ms": summary(times),
                "marked": marked_counts[0],
                "mark_statements": statements[0],
                "scan_baseline_ms": summary(scan),
            }
            log(
                f"tick {name}: marked {marked_counts[0]}, p50 {cases[name]['tick_ms']['p50']:.1f}"
                f" ms (scan {cases[name]['scan_baseline_ms']['p50']:.1f} ms)"
            )
    finally:
        await store.close()
        await trio_asyncio.aio_as_trio(conn.close)()
    return cases


async def _ping_part(dsn: str, org_id: str, args: argparse.Namespace) -> dict[str, Any]:
    conn = await asyncpg.connect(dsn)
    try:
        tokens = [
            str(r["ping_token"])
            for r in await conn.fetch(
                "select ping_token from monitors order by name limit $1", args.connections
            )
        ]
    finally:
        await conn.close()
    paths = [f"/ping/{t}" for t in tokens]
    results: dict[str, Any] = {}
    for name in ("runlater", "bare-quart") * args.ping_rounds:
        procs = Processes()
        with harness.workdir(f"monitors-{name}") as work:
            try:
                if name == "runlater":
                    server, port = harness.start_serve(
                        procs,
                        dsn,
                        max_workers=2,
                        workdir=work,
                        extra_env={"RUNLATER_PING_RATE_LIMIT_PER_TOKEN": "0"},
                    )
                else:
                    server, port = harness.start_bare_api(procs, "quart", work / "bare.log")
                meter = CpuMeter({"serve": [server.pid]})
                run = await _drive(
                    procs,
                    meter,
                    f"http://127.0.0.1:{port}{paths[0]}",
                    "",
                    connections=args.connections,
                    clients=args.clients,
                    duration=args.duration,
                    warmup=args.warmup,
                    paths=paths,
                )
            finally:
                procs.close()
        results.setdefault(name, []).append(run)
        log(
            f"ping {name}: {run['rps']:.0f}/s p50 {run['latency_ms']['p50']:.1f} ms"
            f" p99 {run['latency_ms']['p99']:.1f} ms statuses {run['statuses']}"
        )
    return results


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    async with harness.throwaway_run(args) as (cluster, result):
        dsn = await cluster.new_database("monitors")
        harness.migrate(dsn)
        org = harness.bootstrap(dsn)
        if "tick" in args.only:
            result["tick"] = await asyncio.to_thread(
                lambda: trio_asyncio.run(_tick_part, dsn, org.id, args)
            )
        if "ping" in args.only:
            result["ping"] = await _ping_part(dsn, org.id, args)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="tick,ping")
    parser.add_argument("--monitors", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--ping-rounds", type=int, default=2)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    result = asyncio.run(main_async(args))
    path = harness.write_result("monitors", result, args.out)
    log(f"result written to {path}")


if __name__ == "__main__":
    main()
