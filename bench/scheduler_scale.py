"""Scheduler at scale: many cron tasks due in the same minute (``python -m bench.scheduler_scale``).

``--tasks`` (default 100,000) cron tasks of one organization are all due at the start of one
minute M (each fires once a year, at M, so the run sees exactly one wave). One real
``runlater serve`` node (its scheduler is the leader's) and a sink in its own process. From M
on, the database is polled:

- **created**: seconds from M until every task's execution for M exists (the scheduler's
  batches of 1,000, one statement each);
- **delivered**: seconds from M until every one of them is ``success`` at the sink;
- the **ratio** of the scheduler's creation rate to the pool's drain rate in the same run
  (tasks / created s over tasks / (delivered s - created s)): how far the scheduler runs ahead
  of what one node's pool can deliver.

``--out`` writes the figures as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from bench import harness
from bench.harness import Cluster, Processes, log

# One statement: N cron tasks due at $3 (firing once a year), as the API would store them.
INSERT_CRON_TASKS = """
insert into tasks (organization_id, name, url, method, headers, schedule_type, cron_expression,
                   timezone, interval_minutes, next_run_at, timeout_ms, retry_attempts, enabled)
select $1::uuid, 'scale ' || i, $2::text, 'POST', '{}'::jsonb, 'cron', $4::text, 'UTC',
       525600, $3::timestamptz, 30000, 0, true
from generate_series(1, $5::int) as i
"""


def next_minute(lead_s: float) -> datetime:
    """The first whole minute at least ``lead_s`` from now."""
    at = datetime.now(UTC) + timedelta(seconds=lead_s)
    return (at + timedelta(minutes=1)).replace(second=0, microsecond=0)


async def wait_count(
    conn: asyncpg.Connection, query: str, args: tuple[Any, ...], target: int, limit_s: float
) -> float | None:
    """Unix time at which ``query`` first counted ``target``, or None after ``limit_s``."""
    deadline = time.time() + limit_s
    while time.time() < deadline:
        if await conn.fetchval(query, *args) >= target:
            return time.time()
        await asyncio.sleep(0.1)
    return None


async def run(args: argparse.Namespace) -> dict[str, Any]:
    cluster = Cluster()
    cluster.start()
    procs = Processes()
    try:
        with harness.workdir("scheduler-scale") as work:
            dsn = await cluster.new_database("sched")
            harness.migrate(dsn)
            org = harness.bootstrap(dsn)
            sink = harness.start_sink_of(procs, args.sink, work)
            url = f"http://127.0.0.1:{sink.port}/scale"
            conn = await asyncpg.connect(dsn)
            try:
                minute = next_minute(args.lead_s)
                expression = f"{minute.minute} {minute.hour} {minute.day} {minute.month} *"
                t0 = time.monotonic()
                await conn.execute(INSERT_CRON_TASKS, org.id, url, minute, expression, args.tasks)
                log(f"scheduler-scale: {args.tasks:,} cron tasks inserted in "
                    f"{time.monotonic() - t0:.1f} s, due at {minute:%H:%M:%S} UTC")  # fmt: skip
                harness.start_serve(procs, dsn, max_workers=args.workers, workdir=work)
                wait_s = minute.timestamp() - time.time()
                if wait_s < 0:
                    raise RuntimeError("the node started after the minute: raise --lead-s")
                log(f"scheduler-scale: node up, {wait_s:.0f} s to the minute")
                await asyncio.sleep(wait_s)
                due = (minute,)
                created_at = await wait_count(
                    conn,
                    "select count(*) from executions where scheduled_for = $1",
                    due,
                    args.tasks,
                    args.limit_s,
                )
                log("scheduler-scale: all executions created" if created_at else "not created")
                delivered_at = await wait_count(
                    conn,
                    "select count(*) from executions where scheduled_for = $1 "
                    "and status = 'success'",
                    due,
                    args.tasks,
                    args.limit_s,
                )
                statuses = await harness.status_counts(conn)
            finally:
                await conn.close()
    finally:
        procs.close()
        cluster.destroy()
    m = minute.timestamp()
    created_s = created_at - m if created_at else None
    delivered_s = delivered_at - m if delivered_at else None
    creation_rate = args.tasks / created_s if created_s else None
    drain_rate = (
        args.tasks / (delivered_s - created_s)
        if delivered_s and created_s and delivered_s > created_s
        else None
    )
    return {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": harness.machine_info(),
        "tasks": args.tasks,
        "max_workers": args.workers,
        "sink": args.sink,
        "created_s": created_s,
        "delivered_s": delivered_s,
        "creation_per_s": creation_rate,
        "drain_per_s": drain_rate,
        "creation_to_drain_ratio": creation_rate / drain_rate
        if creation_rate and drain_rate
        else None,
        "statuses": statuses,
    }


def print_table(r: dict[str, Any]) -> None:
    def f(v: Any, spec: str = ",.1f") -> str:
        return "-" if v is None else format(v, spec)

    print(f"\nscheduler at scale: {r['tasks']:,} cron tasks due in one minute, 1 node, "
          f"max_workers {r['max_workers']}, sink {r['sink']}")  # fmt: skip
    print(f"  minute -> all executions created : {f(r['created_s'])} s "
          f"({f(r['creation_per_s'], ',.0f')}/s)")  # fmt: skip
    print(f"  minute -> all delivered          : {f(r['delivered_s'])} s "
          f"(pool drain {f(r['drain_per_s'], ',.0f')}/s after creation)")  # fmt: skip
    print(f"  creation rate / drain rate       : {f(r['creation_to_drain_ratio'], '.1f')}x")
    print(f"  statuses: {r['statuses']}")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        prog="python -m bench.scheduler_scale", description=__doc__.splitlines()[0]
    )
    p.add_argument("--tasks", type=int, default=100_000)
    p.add_argument("--workers", type=int, default=50, help="RUNLATER_MAX_WORKERS (50)")
    p.add_argument("--sink", choices=harness.SINKS, default="python")
    p.add_argument("--lead-s", type=float, default=30.0, help="at least this long to the minute")
    p.add_argument("--limit-s", type=float, default=1800.0, help="give up waiting after this")
    p.add_argument("--out", help="JSON path (default bench/results/scheduler-scale-<time>.json)")
    args = p.parse_args(argv)
    result = asyncio.run(run(args))
    print_table(result)
    harness.write_result("scheduler-scale", result, args.out)


if __name__ == "__main__":
    main()
