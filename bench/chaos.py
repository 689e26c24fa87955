"""Chaos: SIGKILLed nodes and restarted Postgres under load lose nothing
(``python -m bench.chaos``).

Two real nodes on a fresh database, a sink in its own process that logs every request, and
clients in this process that create one-time tasks, each with its own ``Idempotency-Key``,
retrying (on the other node too) on 503, 409 or a lost connection until the task is accepted.
Every ``--fault-every-s`` one fault, in turn: a node is SIGKILLed (and started again two
seconds later), Postgres is stopped with a fast shutdown for three seconds, Postgres is
stopped with an immediate shutdown (crash recovery at start) for three seconds.

After ``--minutes`` of load the run waits until every accepted task arrived at the sink (at
most ``--drain-s``) and prints: tasks accepted, lost (accepted, never delivered), created more
than once for one key (must be 0), deliveries that arrived twice (allowed: delivery is at
least once, a SIGKILL mid-delivery repeats it; receivers deduplicate on ``webhook-id``), and
answers other than 202/409/503 (must be none).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import random
import signal
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from bench import harness
from bench.harness import Cluster, Processes, log
from runlater.store import embedded

NODE_ENV = {
    # Leases of killed nodes expire quickly: the task timeout (2 s) plus this margin.
    "RUNLATER_LEASE_MARGIN_S": "2",
    "RUNLATER_RESCUE_INTERVAL_S": "1",
    "RUNLATER_POLL_INTERVAL_S": "0.5",
    # Several Postgres outages in a row must not use up the restart budget.
    "RUNLATER_RESTART_MAX": "1000",
}


class Nodes:
    """The two nodes, by name; a killed one is started again on a new port."""

    def __init__(self, procs: Processes, dsn: str, work: Path) -> None:
        self.procs = procs
        self.dsn = dsn
        self.work = work
        self.urls: dict[str, str] = {}
        self.proc: dict[str, Any] = {}

    def start(self, name: str) -> None:
        proc, port = harness.start_serve(
            self.procs, self.dsn, max_workers=20, workdir=self.work, name=name, extra_env=NODE_ENV
        )
        self.proc[name] = proc
        self.urls[name] = f"http://127.0.0.1:{port}"

    def kill(self, name: str) -> None:
        self.urls.pop(name, None)
        proc = self.proc.pop(name)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        self.procs.stop(proc)


def _pg_stop(cluster: Cluster, mode: str) -> None:
    pg = cluster.pg
    assert pg is not None
    cmd = [pg._bin("pg_ctl"), "stop", "-D", str(pg.pg_dir), "-m", mode, "-w"]
    embedded._run(cmd, as_server=True, timeout=90)
    pg.owned = False


async def run(args: argparse.Namespace) -> dict[str, Any]:
    cluster = Cluster()
    cluster.start()
    procs = Processes()
    answers: Counter[int] = Counter()
    accepted: set[str] = set()
    faults: list[dict[str, Any]] = []
    try:
        with harness.workdir("chaos") as work:
            dsn = await cluster.new_database("chaos")
            harness.migrate(dsn)
            org = harness.bootstrap(dsn)
            sink = harness.start_sink_of(procs, "python", work)
            assert sink.log is not None
            nodes = Nodes(procs, dsn, work)
            for name in ("a", "b"):
                nodes.start(name)
            target = f"http://127.0.0.1:{sink.port}/chaos"
            until = time.monotonic() + args.minutes * 60
            headers = {"Authorization": f"Bearer {org.api_key}"}
            counter = itertools.count()

            async with httpx.AsyncClient(headers=headers, timeout=15) as http:

                async def create(key: str) -> None:
                    body = {"url": f"{target}/{key}", "timeout_ms": 2000, "retry_attempts": 5}
                    give_up = until + 120
                    while time.monotonic() < give_up:
                        urls = list(nodes.urls.values())
                        if not urls:
                            await asyncio.sleep(0.2)
                            continue
                        try:
                            reply = await http.post(
                                random.choice(urls) + "/api/v1/tasks",
                                json=body,
                                headers={"Idempotency-Key": key},
                            )
                        except httpx.HTTPError:
                            answers[0] += 1
                            await asyncio.sleep(0.2)
                            continue
                        answers[reply.status_code] += 1
                        if reply.status_code == 202:
                            accepted.add(key)
                            return
                        await asyncio.sleep(0.2)

                async def client() -> None:
                    while time.monotonic() < until:
                        await create(f"k{next(counter)}")
                        await asyncio.sleep(1.0 / args.rate_per_client)

                async def chaos() -> None:
                    kinds = itertools.cycle(["kill-node", "pg-fast", "kill-node", "pg-immediate"])
                    victims = itertools.cycle(["a", "b"])
                    while time.monotonic() + args.fault_every_s < until:
                        await asyncio.sleep(args.fault_every_s)
                        kind = next(kinds)
                        at = time.monotonic()
                        if kind == "kill-node":
                            name = next(victims)
                            nodes.kill(name)
                            await asyncio.sleep(2)
                            await asyncio.to_thread(nodes.start, name)
                        else:
                            await asyncio.to_thread(_pg_stop, cluster, kind.split("-")[1])
                            await asyncio.sleep(3)
                            await asyncio.to_thread(cluster.pg.start)  # type: ignore[union-attr]
                        faults.append({"kind": kind, "took_s": round(time.monotonic() - at, 1)})
                        log(f"chaos: {kind} done, {len(accepted)} accepted so far")

                await asyncio.gather(chaos(), *(client() for _ in range(args.clients)))

            drain_until = time.monotonic() + args.drain_s
            while time.monotonic() < drain_until:
                sink.log.poll()
                arrived = {row["path"].rsplit("/", 1)[-1] for row in sink.log.rows}
                if accepted <= arrived:
                    break
                await asyncio.sleep(1)
            sink.log.poll()
            deliveries = Counter(row["path"].rsplit("/", 1)[-1] for row in sink.log.rows)
            conn = await asyncpg.connect(dsn)
            try:
                per_key = await conn.fetch(
                    "select url, count(*) as n from tasks group by url having count(*) > 1"
                )
            finally:
                await conn.close()
    finally:
        procs.close()
        cluster.destroy()

    lost = sorted(accepted - set(deliveries))
    return {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": harness.machine_info(),
        "minutes": args.minutes,
        "faults": faults,
        "fault_counts": dict(Counter(f["kind"] for f in faults)),
        "accepted": len(accepted),
        "lost": len(lost),
        "lost_keys": lost[:20],
        "tasks_created_twice_for_one_key": len(per_key),
        "delivered_twice": sum(1 for n in deliveries.values() if n > 1),
        "answers": {str(k): v for k, v in sorted(answers.items())},
        "unexpected_answers": sum(v for k, v in answers.items() if k not in (0, 202, 409, 503)),
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=4.0)
    p.add_argument("--clients", type=int, default=20)
    p.add_argument("--rate-per-client", type=float, default=5.0, help="creations per s")
    p.add_argument("--fault-every-s", type=float, default=10.0)
    p.add_argument("--drain-s", type=float, default=180.0)
    p.add_argument("--out", help="JSON path (default bench/results/chaos-<time>.json)")
    args = p.parse_args(argv)
    result = asyncio.run(run(args))
    print(json.dumps({k: v for k, v in result.items() if k not in ("faults", "machine")}, indent=1))
    harness.write_result("chaos", result, args.out)


if __name__ == "__main__":
    main()
