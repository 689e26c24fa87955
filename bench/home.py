"""The dashboard at scale (``python -m bench.home``): the home page, the Failures page and an
execution's page with a million executions in the database, against a small database, in the
same run.

One throwaway cluster, one database, one organization (``runlater bootstrap``, tier pro) with
``TASKS`` one-time tasks, and a signed-in browser session (a ``sessions`` row written the way a
sign-in writes it: the SHA-256 of a random cookie token). Executions are written while no node
runs, in transactions of ``CHUNK``: inserted pending, then finished in the same transaction by
one UPDATE (success 94 %, failed 4 %, timed out 2 %; durations skewed towards fast), so the
per-minute aggregate the home page reads (migration 012) is kept up by its real trigger, as it
is in production. Finish times spread uniformly over the last ``DAYS`` days. One failed first
attempt in a hundred gets two retries (failed, then success; written finished, so the aggregate
counts them as "other"), and five retries wait, due in an hour (the Failures page's retries in
flight). The execution page shown is the newest such three-attempt chain's last attempt.

Two steps: ``--small`` (1,000) executions, then ``--large`` (1,000,000) in all. At each step a
fresh ``runlater serve`` node starts, ``WARMUP`` rounds warm it, then ``--requests`` rounds of
one sequential GET of each page are timed on the client (httpx, one keep-alive connection:
request sent to the last byte of the page read). pg_stat_statements is reset before the timed
requests, so the statements the pages ran are reported with their mean time. Baseline beside
the home page: the same 7-day per-hour figures computed by scanning ``executions`` (what the
page would cost without the aggregate), timed directly in Postgres.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import secrets
import time
from typing import Any

import asyncpg
import httpx

from bench import harness
from bench.harness import Processes, log, summary

TASKS = 100
CHUNK = 50_000
DAYS = 14
WARMUP = 20

INSERT_PENDING = """
with t as (
    select id, organization_id, host, row_number() over (order by id) - 1 as k
    from tasks where organization_id = $1::uuid
)
insert into executions (organization_id, task_id, source, priority, scheduled_for, host)
select t.organization_id, t.id, 'trigger', execution_priority('pro', null),
       now() - random() * make_interval(days => $3), t.host
from generate_series(1, $2) as g(i)
join t on t.k = g.i % $4
"""
# The pending rows of this transaction are the ones just inserted (no node runs meanwhile).
FINISH = """
with r as (
    select id, scheduled_for, random() as outcome, random() as speed
    from executions where organization_id = $1::uuid and status = 'pending'
), f as (
    select id, scheduled_for,
           case when outcome < 0.94 then 'success' when outcome < 0.98 then 'failed'
                else 'timeout' end as status,
           case when outcome < 0.98 then (5 + 3000 * speed ^ 4)::int else 30000 end as ms
    from r
)
update executions e
set status = f.status,
    started_at = f.scheduled_for,
    finished_at = f.scheduled_for + make_interval(secs => f.ms / 1000.0),
    duration_ms = f.ms,
    status_code = case f.status when 'success' then 200 when 'failed' then 500 end,
    error_message = case f.status when 'failed' then 'HTTP 500'
                                  when 'timeout' then 'timed out after 30000 ms' end,
    request_method = 'POST', request_url = 'https://example.com/hook'
from f
where e.id = f.id
"""
INSERT_TASKS = """
insert into tasks (organization_id, name, url, method, schedule_type, timezone, scheduled_at,
                   timeout_ms, retry_attempts, enabled)
select $1::uuid, 'job-' || lpad(i::text, 3, '0'), 'https://example.com/hook/' || i, 'POST',
       'once', 'UTC', now() - interval '30 days', 30000, 0, true
from generate_series(1, $2) as i
"""
# One failed first attempt in a hundred (and the newest of each batch) was retried twice (failed,
# then succeeded); five more
# retries wait, due in an hour: the Failures page's chains and its retries in flight.
ADD_RETRIES = """
with picked as (
    select e.* from executions e
    where e.organization_id = $1::uuid and e.status = 'failed' and e.attempt = 1
      and not exists (select 1 from executions r where r.root_execution_id = e.id)
      and (random() < 0.01 or e.id = (
          select f.id from executions f
          where f.organization_id = $1::uuid and f.status = 'failed' and f.attempt = 1
          order by f.id desc limit 1))
), second as (
    insert into executions (organization_id, task_id, root_execution_id, source, status,
                            attempt, priority, scheduled_for, host, started_at, finished_at,
                            duration_ms, status_code, error_message)
    select organization_id, task_id, id, 'retry', 'failed', 2, priority,
           finished_at + interval '10 seconds', host, finished_at + interval '10 seconds',
           finished_at + interval '11 seconds', 1000, 500, 'HTTP 500'
    from picked
)
insert into executions (organization_id, task_id, root_execution_id, source, status, attempt,
                        priority, scheduled_for, host, started_at, finished_at, duration_ms,
                        status_code)
select organization_id, task_id, id, 'retry', 'success', 3, priority,
       finished_at + interval '40 seconds', host, finished_at + interval '40 seconds',
       finished_at + interval '41 seconds', 1000, 200
from picked
"""
OPEN_RETRIES = """
insert into executions (organization_id, task_id, root_execution_id, source, attempt, priority,
                        scheduled_for, host)
select organization_id, task_id, id, 'retry', 2, priority, now() + interval '1 hour', host
from executions
where organization_id = $1::uuid and status = 'failed' and attempt = 1
  and not exists (select 1 from executions r where r.root_execution_id = executions.id)
order by id desc
limit 5
"""
LAST_CHAIN = """
select id from executions where organization_id = $1::uuid and attempt = 3
order by finished_at desc limit 1
"""
# The pages timed, with a text each must show.
PAGES = {
    "home": ("/", "Last failures"),
    "failures": ("/failures", "Failures"),
    "execution": ("/executions/{chain}", "Attempts"),
}
# What the home page's per-hour figures would cost read from the executions themselves.
SCAN_BASELINE = """
select date_trunc('hour', finished_at) as hour,
       count(*) filter (where status = 'success') as success,
       count(*) filter (where status in ('failed', 'timeout')) as failed,
       percentile_cont(0.5) within group (order by duration_ms) as p50,
       percentile_cont(0.95) within group (order by duration_ms) as p95
from executions
where organization_id = $1::uuid and finished_at >= date_trunc('hour', now()) - interval '167 hours'
group by 1
"""
STATEMENTS = """
select regexp_replace(left(query, 90), '\\s+', ' ', 'g') as query, calls,
       round((total_exec_time / calls)::numeric, 3)::float8 as mean_ms
from pg_stat_statements
where calls > 0 and query not ilike '%pg_stat_statements%'
order by total_exec_time desc
limit 6
"""


async def sign_in(conn: asyncpg.Connection, org_id: str) -> str:
    """A session for the organization's owner, as the sign-in link's POST writes it; the
    cookie's token."""
    token = secrets.token_urlsafe(32)
    user_id = await conn.fetchval(
        "select user_id from memberships where organization_id = $1::uuid and role = 'owner'",
        org_id,
    )
    await conn.execute(
        "insert into sessions (token_hash, user_id, organization_id, csrf_token, expires_at)"
        " values ($1, $2, $3::uuid, $4, now() + interval '1 day')",
        hashlib.sha256(token.encode()).hexdigest(),
        user_id,
        org_id,
        secrets.token_urlsafe(32),
    )
    return token


async def add_executions(conn: asyncpg.Connection, org_id: str, count: int) -> float:
    """``count`` finished executions, ``CHUNK`` per transaction; seconds taken."""
    t0 = time.perf_counter()
    done = 0
    while done < count:
        n = min(CHUNK, count - done)
        async with conn.transaction():
            await conn.execute(INSERT_PENDING, org_id, n, DAYS, TASKS)
            await conn.execute(FINISH, org_id)
            await conn.execute(ADD_RETRIES, org_id)
        done += n
        if done % 200_000 == 0 or done == count:
            log(f"  {done:,} / {count:,} executions written")
    await conn.execute(OPEN_RETRIES, org_id)
    await conn.execute("vacuum analyze executions")
    await conn.execute("vacuum analyze execution_minutes")
    return time.perf_counter() - t0


async def time_pages(port: int, token: str, chain: str, requests: int) -> dict[str, list[float]]:
    """Milliseconds per GET of each page (``WARMUP`` untimed first), interleaved."""
    times: dict[str, list[float]] = {name: [] for name in PAGES}
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}",
        cookies={"runlater_session": token},
        timeout=60,
    ) as client:
        for i in range(WARMUP + requests):
            for name, (path, shows) in PAGES.items():
                t0 = time.perf_counter()
                url = path.format(chain=chain)
                page = await client.get(url)
                elapsed = (time.perf_counter() - t0) * 1000
                if page.status_code != 200 or shows not in page.text:
                    raise RuntimeError(f"GET {url} answered {page.status_code}: {page.text[:500]}")
                if i >= WARMUP:
                    times[name].append(elapsed)
    return times


async def scan_baseline(conn: asyncpg.Connection, org_id: str, repeats: int = 5) -> list[float]:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        await conn.fetch(SCAN_BASELINE, org_id)
        times.append((time.perf_counter() - t0) * 1000)
    return times


async def step(
    conn: asyncpg.Connection,
    dsn: str,
    org_id: str,
    token: str,
    args: argparse.Namespace,
    label: str,
) -> dict[str, Any]:
    procs = Processes()
    with harness.workdir("home") as work:
        try:
            _, port = harness.start_serve(procs, dsn, max_workers=2, workdir=work, name=label)
            chain = str(await conn.fetchval(LAST_CHAIN, org_id))  # not one of the pages'
            await conn.execute("select pg_stat_statements_reset()")
            times = await time_pages(port, token, chain, args.requests)
            statements = [dict(r) for r in await conn.fetch(STATEMENTS)]
        finally:
            procs.close()
    executions = await conn.fetchval("select count(*) from executions")
    minutes = await conn.fetchval("select count(*) from execution_minutes")
    return {
        "executions": executions,
        "aggregate_rows": minutes,
        "render_ms": {name: summary(values) for name, values in times.items()},
        "scan_baseline_ms": summary(await scan_baseline(conn, org_id)),
        "statements": statements,
    }


async def amain(args: argparse.Namespace) -> dict[str, Any]:
    async with harness.throwaway_run(args) as (cluster, result):
        dsn = await cluster.new_database("home")
        org = harness.bootstrap(dsn)
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute("create extension if not exists pg_stat_statements")
            await conn.execute(INSERT_TASKS, org.id, TASKS)
            token = await sign_in(conn, org.id)
            steps = []
            written = 0
            for target, label in ((args.small, "small"), (args.large, "large")):
                log(f"writing executions up to {target:,}")
                result[f"write_s_{label}"] = await add_executions(conn, org.id, target - written)
                written = target
                log(f"timing GET / with {target:,} executions")
                steps.append({"label": label, **await step(conn, dsn, org.id, token, args, label)})
                log(f"  -> home p50 {steps[-1]['render_ms']['home']['p50']:.1f} ms")
            result["steps"] = steps
        finally:
            await conn.close()
    return result


def fmt(v: float | None, digits: int = 1) -> str:
    return "-" if v is None else f"{v:,.{digits}f}"


def table(result: dict[str, Any]) -> str:
    small, large = result["steps"]
    lines = [
        f"dashboard pages, {result['args']['requests']} sequential GETs of each per step, "
        "interleaved (client-timed, ms)",
        f"{'executions':>12} {'page':>10} {'p50':>7} {'p95':>7} {'p99':>7} {'max':>7}",
    ]
    for s in (small, large):
        for name, r in s["render_ms"].items():
            lines.append(
                f"{s['executions']:>12,} {name:>10} {fmt(r['p50']):>7} {fmt(r['p95']):>7}"
                f" {fmt(r['p99']):>7} {fmt(r['max']):>7}"
            )
    for name in large["render_ms"]:
        ratio = large["render_ms"][name]["p50"] / small["render_ms"][name]["p50"]
        lines.append(f"{name}: p50 large / small {ratio:.2f}x")
    lines.append(
        f"home's aggregate rows: {small['aggregate_rows']:,} and {large['aggregate_rows']:,}; "
        f"its 7-day figures scanned from executions instead: "
        f"{fmt(small['scan_baseline_ms']['p50'])} and {fmt(large['scan_baseline_ms']['p50'])} ms"
    )
    lines.append("statements at the large step (mean ms, calls):")
    for st in large["statements"]:
        lines.append(f"  {st['mean_ms']:>8.3f} {st['calls']:>5}  {st['query']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.home", description=__doc__.splitlines()[0])
    p.add_argument("--small", type=int, default=1_000, help="executions, first step (1,000)")
    p.add_argument("--large", type=int, default=1_000_000, help="executions in all (1,000,000)")
    p.add_argument("--requests", type=int, default=200, help="timed GETs per step (200)")
    p.add_argument("--out", help="JSON path (default bench/results/home-<time>.json)")
    args = p.parse_args(argv)
    if not 0 < args.small < args.large:
        p.error("--small must be positive and below --large")
    result = asyncio.run(amain(args))
    print(table(result))
    harness.write_result("home", result, args.out)


if __name__ == "__main__":
    main()
