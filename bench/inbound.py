"""Inbound webhooks at ``/in/{slug}`` on one node (``python -m bench.inbound``).

One ``runlater serve`` node (rate limits as configured for a node; two workers), ``--connections``
endpoints of one organization made through the REST API, each forwarding to one URL of a bare
ASGI target (``bench.bare_api --mode asgi``: answers 202, no database). ``bench.api_load``
posts a small JSON webhook body to the endpoints' inbound URLs (one endpoint per connection),
closed loop for ``--duration`` s, against the bare quart-trio route of ``bench.bare_api``
(reads the body, answers ``{"id", "status": "received"}``, no database) with the same load
generator in the same run. Requests per second and latency percentiles of both; for Runlater
also the events stored (must equal the 200 answers) and how long after the load stopped the
forwards were all delivered (the answer never waits for them; the workers drain them).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

import asyncpg
import httpx

from bench import harness
from bench.api import _drive
from bench.harness import CpuMeter, Processes, log

DRAIN_LIMIT_S = 300


def _make_endpoints(port: int, key: str, count: int, target: str, round_no: int) -> list[str]:
    slugs = []
    with httpx.Client(
        base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {key}"}
    ) as client:
        for i in range(count):
            answer = client.post(
                "/api/v1/endpoints",
                json={"name": f"bench-{round_no}-{i}", "forward_urls": [target]},
            )
            answer.raise_for_status()
            slugs.append(answer.json()["data"]["slug"])
    return slugs


async def _drain(dsn: str) -> tuple[int, float, int]:
    """Events stored, seconds until no forward is pending or running, forwards delivered."""
    conn = await asyncpg.connect(dsn)
    started = time.monotonic()
    try:
        while True:
            open_ = await conn.fetchval(
                "select count(*) from executions where status in ('pending', 'running')"
            )
            if open_ == 0 or time.monotonic() - started > DRAIN_LIMIT_S:
                break
            await asyncio.sleep(0.2)
        drained = time.monotonic() - started
        events = await conn.fetchval("select count(*) from inbound_events")
        delivered = await conn.fetchval("select count(*) from executions where status = 'success'")
    finally:
        await conn.close()
    return events, drained, delivered


async def _in_part(dsn: str, key: str, args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for round_no, name in enumerate(("runlater", "bare-quart") * args.rounds):
        procs = Processes()
        with harness.workdir(f"inbound-{name}") as work:
            try:
                if name == "runlater":
                    _target, target_port = harness.start_bare_api(
                        procs, "asgi", work / "target.log"
                    )
                    server, port = harness.start_serve(procs, dsn, max_workers=2, workdir=work)
                    slugs = _make_endpoints(
                        port,
                        key,
                        args.connections,
                        f"http://127.0.0.1:{target_port}/target",
                        round_no,
                    )
                    await _truncate(dsn)
                else:
                    server, port = harness.start_bare_api(procs, "quart", work / "bare.log")
                    slugs = [f"bare-{i}" for i in range(args.connections)]
                meter = CpuMeter({"serve": [server.pid]})
                paths = [f"/in/{s}" for s in slugs]
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
                if name == "runlater":
                    events, drained, delivered = await _drain(dsn)
                    run["events_stored"] = events
                    run["forwards_delivered"] = delivered
                    run["drained_after_s"] = round(drained, 1)
            finally:
                procs.close()
        results.setdefault(name, []).append(run)
        extra = ""
        if name == "runlater":
            extra = (
                f" stored {run['events_stored']} delivered {run['forwards_delivered']}"
                f" drained {run['drained_after_s']} s after the load"
            )
        log(
            f"in {name}: {run['rps']:.0f}/s p50 {run['latency_ms']['p50']:.1f} ms"
            f" p99 {run['latency_ms']['p99']:.1f} ms statuses {run['statuses']}{extra}"
        )
    ours = [r["rps"] for r in results.get("runlater", [])]
    bare = [r["rps"] for r in results.get("bare-quart", [])]
    if ours and bare:
        results["ratio_rps"] = round(max(ours) / max(bare), 2)
        log(f"in: runlater / bare quart-trio = {results['ratio_rps']:.2f}x (best rounds)")
    return results


async def _truncate(dsn: str) -> None:
    """A round starts with no events and no executions (the counts above are per round)."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("truncate inbound_events, executions cascade")
    finally:
        await conn.close()


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    async with harness.throwaway_run(args) as (cluster, result):
        dsn = await cluster.new_database("inbound")
        harness.migrate(dsn)
        org = harness.bootstrap(dsn)
        result["in"] = await _in_part(dsn, org.api_key, args)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    result = asyncio.run(main_async(args))
    path = harness.write_result("inbound", result, args.out)
    log(f"result written to {path}")


if __name__ == "__main__":
    main()
