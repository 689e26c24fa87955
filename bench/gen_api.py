"""Load generator: creates one-time tasks through ``POST /api/v1/tasks`` at a fixed rate.

``python -m bench.gen_api --api URL --key KEY --sink URL --rate R --duration S --lead L``
Open loop: request i is due to be sent at t0 + i/R; up to ``--connections`` keep-alive
connections send them (a request waits for a free connection when all are busy — that wait is
reported as ``send_lag``). Each task's ``run_at`` is the moment its request is sent + ``lead``
seconds, and the same instant goes into the task's ``X-Bench-Due`` header, so the sink's log
carries the due time of every delivery. Prints one JSON line with what it achieved.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import time
from datetime import UTC, datetime
from urllib.parse import urlsplit

import trio

from bench.h11client import H11Connection


async def run(args: argparse.Namespace) -> dict:
    api = urlsplit(args.api)
    total = round(args.rate * args.duration)
    t0 = time.time() + 0.05
    send, recv = trio.open_memory_channel[tuple[int, float]](math.inf)
    created = 0
    skipped = 0
    errors: dict[str, int] = {}
    latencies: list[float] = []
    lags: list[float] = []
    auth = ("authorization", f"Bearer {args.key}")

    async def connection_worker() -> None:
        nonlocal created, skipped
        conn = H11Connection(api.hostname or "127.0.0.1", api.port or 80)
        try:
            async for _i, intended in recv:
                sent = time.time()
                if sent > t0 + args.duration + args.grace:  # bounded: never run on and on
                    skipped += 1
                    continue
                lags.append(sent - intended)
                due = sent + args.lead
                body = json.dumps(
                    {
                        "url": args.sink,
                        "run_at": datetime.fromtimestamp(due, UTC).isoformat(),
                        "headers": {"X-Bench-Due": repr(due), "X-Bench-Run": args.tag},
                        "retry_attempts": 0,
                    }
                ).encode()
                started = time.perf_counter()
                try:
                    status, payload = await conn.request(
                        "POST",
                        "/api/v1/tasks",
                        [auth, ("content-type", "application/json")],
                        body,
                    )
                except (OSError, EOFError, trio.BrokenResourceError) as exc:
                    key = type(exc).__name__
                    errors[key] = errors.get(key, 0) + 1
                    continue
                latencies.append(time.perf_counter() - started)
                if status == 202:
                    created += 1
                else:
                    key = f"HTTP {status}: {payload[:120].decode(errors='replace')}"
                    errors[key] = errors.get(key, 0) + 1
        finally:
            await conn.close()

    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    async with trio.open_nursery() as nursery:
        for _ in range(args.connections):
            nursery.start_soon(connection_worker)
        async with send:
            for i in range(total):
                intended = t0 + i / args.rate
                delay = intended - time.time()
                if delay > 0:
                    await trio.sleep(delay)
                send.send_nowait((i, intended))
    elapsed = time.time() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    latencies.sort()
    lags.sort()

    def pct(data: list[float], q: float) -> float | None:
        return data[min(len(data) - 1, int(len(data) * q))] * 1000 if data else None

    return {
        "target_rate": args.rate,
        "requested": total,
        "created": created,
        "skipped_over_time": skipped,
        "errors": errors,
        "elapsed_s": elapsed,
        "achieved_rate": created / elapsed if elapsed else None,
        "create_latency_p50_ms": pct(latencies, 0.5),
        "create_latency_p99_ms": pct(latencies, 0.99),
        "create_latency_max_ms": latencies[-1] * 1000 if latencies else None,
        "send_lag_p50_ms": pct(lags, 0.5),
        "send_lag_p99_ms": pct(lags, 0.99),
        "send_lag_max_ms": lags[-1] * 1000 if lags else None,
        "generator_cpu_s": (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--api", required=True, help="http://127.0.0.1:PORT of runlater serve")
    parser.add_argument("--key", required=True)
    parser.add_argument("--sink", required=True, help="URL the tasks call")
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--lead", type=float, default=1.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--tag", default="lateness")
    parser.add_argument(
        "--grace", type=float, default=5.0, help="requests not sent by duration + grace are skipped"
    )
    args = parser.parse_args()
    for url in (args.api, args.sink):
        if not url.startswith("http://127.0.0.1:"):
            raise SystemExit("bench.gen_api only targets http://127.0.0.1")
    print(json.dumps(trio.run(run, args)), flush=True)


if __name__ == "__main__":
    main()
