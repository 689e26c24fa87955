"""HTTP baseline: COUNT requests at CONCURRENCY to the sink, from its own process.

``python -m bench.httploop --url URL --count N --concurrency C --mode MODE`` prints one JSON
line. Modes, from the limit down to what the engine does:

- ``h11``: raw keep-alive HTTP/1.1 on trio streams (bench.h11client) — the HTTP limit;
- ``httpx``: ``httpx.AsyncClient`` under trio with the node's limits — the client library alone;
- ``deliverer``: runlater's own ``Deliverer.deliver`` (SSRF pre-check + request + body
  capture) on fabricated claims, on httpx's default transport (``bench.httpx_node``)
  — the engine's delivery path without any database;
- ``deliverer-runlater``: the same on runlater's ``TrioTransport`` (the default transport; the
  SSRF check happens at connect, no pre-check). Both built as ``runlater.node`` builds them.

Every request carries the same header set a delivery carries.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
import uuid
from datetime import UTC, datetime
from urllib.parse import urlsplit

import trio

from bench.h11client import H11Connection


def delivery_headers() -> list[tuple[str, str]]:
    ident = str(uuid.uuid4())
    return [
        ("x-bench-due", str(time.time())),
        ("x-bench-run", "httploop"),
        ("user-agent", "Runlater/0.1.0"),
        ("accept-encoding", "identity"),
        ("x-runlater-task-id", ident),
        ("x-runlater-execution-id", ident),
        ("x-runlater-attempt", "1"),
        ("webhook-id", ident),
    ]


async def run(url: str, count: int, concurrency: int, mode: str) -> dict:
    parts = urlsplit(url)
    host, port, path = parts.hostname or "127.0.0.1", parts.port or 80, parts.path or "/"
    remaining = count
    ok = 0
    errors = 0
    latencies: list[float] = []

    def take() -> bool:
        nonlocal remaining
        if remaining <= 0:
            return False
        remaining -= 1
        return True

    def done(status: int, started: float) -> None:
        nonlocal ok, errors
        latencies.append(time.perf_counter() - started)
        if 200 <= status < 300:
            ok += 1
        else:
            errors += 1

    async def h11_worker() -> None:
        conn = H11Connection(host, port)
        try:
            while take():
                started = time.perf_counter()
                status, _ = await conn.request("POST", path, delivery_headers())
                done(status, started)
        finally:
            await conn.close()

    client = None
    deliverer = None
    transport = None
    if mode == "httpx":
        import httpx

        limits = httpx.Limits(
            max_connections=concurrency * 2, max_keepalive_connections=concurrency
        )
        client = httpx.AsyncClient(limits=limits, follow_redirects=False, trust_env=False)
    elif mode in ("deliverer", "deliverer-runlater"):
        # Built as the node builds it (runlater.node.build_node), or as the baseline node of
        # bench.httpx_node builds it: the transport called directly.
        from bench.httpx_node import httpx_outbound
        from runlater.config import Settings
        from runlater.delivery.client import Deliverer
        from runlater.node import outbound_transport

        settings = Settings(allow_private_targets=True, max_workers=concurrency)
        build = outbound_transport if mode == "deliverer-runlater" else httpx_outbound
        transport = build(settings)
        deliverer = Deliverer(transport)

    async def httpx_worker() -> None:
        assert client is not None
        while take():
            started = time.perf_counter()
            response = await client.post(url, headers=dict(delivery_headers()))
            done(response.status_code, started)

    async def deliverer_worker() -> None:
        from runlater.store.records import ClaimedExecution

        assert deliverer is not None
        while take():
            ident = uuid.uuid4()
            claimed = ClaimedExecution(
                id=ident,
                lease_token=uuid.uuid4(),
                task_id=ident,
                organization_id=ident,
                attempt=1,
                root_execution_id=ident,
                scheduled_for=datetime.now(UTC),
                schedule_type="once",
                url=url,
                method="POST",
                headers={"X-Bench-Due": str(time.time()), "X-Bench-Run": "httploop"},
                body=None,
                timeout_ms=30000,
                retry_attempts=0,
            )
            started = time.perf_counter()
            attempt = await deliverer.deliver(claimed)
            done(attempt.status_code or 0, started)

    worker = {
        "h11": h11_worker,
        "httpx": httpx_worker,
        "deliverer": deliverer_worker,
        "deliverer-runlater": deliverer_worker,
    }[mode]
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    try:
        async with trio.open_nursery() as nursery:
            for _ in range(concurrency):
                nursery.start_soon(worker)
    finally:
        if client is not None:
            await client.aclose()
        if transport is not None:
            await transport.aclose()
    elapsed = time.perf_counter() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    latencies.sort()
    return {
        "mode": mode,
        "count": count,
        "concurrency": concurrency,
        "ok": ok,
        "errors": errors,
        "elapsed_s": elapsed,
        "rps": ok / elapsed if elapsed else None,
        "client_cpu_s": cpu,
        "client_cpu_us_per_req": cpu / max(ok, 1) * 1e6,
        "latency_p50_ms": latencies[len(latencies) // 2] * 1000 if latencies else None,
        "latency_p99_ms": latencies[int(len(latencies) * 0.99)] * 1000 if latencies else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument(
        "--mode", choices=("h11", "httpx", "deliverer", "deliverer-runlater"), default="h11"
    )
    args = parser.parse_args()
    if not args.url.startswith("http://127.0.0.1:"):
        raise SystemExit("bench.httploop only targets http://127.0.0.1")
    result = trio.run(run, args.url, args.count, args.concurrency, args.mode)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
