"""Micro-benchmark of the delivery HTTP client: runlater's TrioTransport against httpx's default
transport and the raw h11 loop, to the sink in another process.

``python -m bench.transport_micro [--count 5000] [--concurrency 50] [--rounds 3]`` prints one
line per mode and round and a median table (client CPU µs per request, requests/s). Modes:

- ``h11``: raw keep-alive HTTP/1.1 on trio streams (bench.h11client), the floor;
- ``httpx-default``: ``httpx.AsyncClient`` with its default transport (the node's limits);
- ``httpx-trio``: ``delivery_client(TrioTransport(...))`` (httpx.AsyncClient on our transport);
- ``deliverer-trio``: runlater's ``Deliverer`` calling TrioTransport directly (as the node
  does), no pre-check (the SSRF check happens in the transport's connect step).

Modes run interleaved (every mode once per round) so machine noise hits them alike.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import httpx
import trio

from bench.h11client import H11Connection
from bench.httploop import delivery_headers

MODES = ("h11", "httpx-default", "httpx-trio", "deliverer-trio")


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def run(mode: str, port: int, count: int, concurrency: int) -> tuple[float, float]:
    """(client CPU µs per request, requests per second) for one mode."""
    from runlater.delivery.client import Deliverer
    from runlater.delivery.transport import TrioTransport, delivery_client
    from runlater.store.records import ClaimedExecution

    url = f"http://127.0.0.1:{port}/bench"
    remaining = count
    failures = 0
    client: httpx.AsyncClient | None = None
    if mode == "httpx-default":
        limits = httpx.Limits(
            max_connections=concurrency * 2, max_keepalive_connections=concurrency
        )
        client = httpx.AsyncClient(limits=limits, follow_redirects=False, trust_env=False)
    elif mode == "httpx-trio":
        client = delivery_client(TrioTransport(allow_private=True, max_idle_per_host=concurrency))
    deliverer = None
    transport: TrioTransport | None = None
    if mode == "deliverer-trio":
        # As the node does it: the transport called directly, no httpx client around it.
        transport = TrioTransport(allow_private=True, max_idle_per_host=concurrency)
        deliverer = Deliverer(transport, allow_private_targets=True, precheck_urls=False)

    def claim() -> ClaimedExecution:
        ident = uuid.uuid4()
        return ClaimedExecution(
            id=ident,
            lease_token=ident,
            task_id=ident,
            organization_id=ident,
            attempt=1,
            root_execution_id=ident,
            scheduled_for=datetime.now(UTC),
            schedule_type="once",
            url=url,
            method="POST",
            headers={"X-Bench-Run": "transport_micro"},
            body=None,
            timeout_ms=30000,
            retry_attempts=0,
        )

    async def one_h11(conn: H11Connection) -> int:
        status, _ = await conn.request("POST", "/bench", delivery_headers())
        return status

    async def worker() -> None:
        nonlocal remaining, failures
        conn = H11Connection("127.0.0.1", port)
        send: Callable[[], Awaitable[int]]
        if mode == "h11":
            send = lambda: one_h11(conn)  # noqa: E731
        elif mode == "deliverer-trio":
            assert deliverer is not None

            async def send() -> int:
                return (await deliverer.deliver(claim())).status_code or 0
        else:
            assert client is not None

            async def send() -> int:
                return (await client.post(url, headers=dict(delivery_headers()))).status_code

        try:
            while remaining > 0:
                remaining -= 1
                if await send() != 200:
                    failures += 1
        finally:
            await conn.close()

    cpu0, t0 = cpu_s(), time.perf_counter()
    async with trio.open_nursery() as nursery:
        for _ in range(concurrency):
            nursery.start_soon(worker)
    elapsed, cpu = time.perf_counter() - t0, cpu_s() - cpu0
    if client is not None:
        await client.aclose()
    if transport is not None:
        await transport.aclose()
    if failures:
        raise SystemExit(f"{mode}: {failures} requests failed")
    return cpu / count * 1e6, count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    sink = subprocess.Popen(
        [sys.executable, "-m", "tests.helpers.sink", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert sink.stdout is not None
        port = int(sink.stdout.readline().split()[1])
        results: dict[str, list[tuple[float, float]]] = {m: [] for m in MODES}
        for round_no in range(1, args.rounds + 1):
            for mode in MODES:
                us, rps = trio.run(run, mode, port, args.count, args.concurrency)
                results[mode].append((us, rps))
                print(f"round {round_no} {mode:15} {us:8.0f} µs/req {rps:8.0f} req/s", flush=True)
        print(f"\nmedian of {args.rounds}, N={args.count}, concurrency {args.concurrency}:")
        print(f"{'mode':15} {'client CPU µs/req':>18} {'req/s':>8}")
        for mode in MODES:
            us = statistics.median(r[0] for r in results[mode])
            rps = statistics.median(r[1] for r in results[mode])
            print(f"{mode:15} {us:18.0f} {rps:8.0f}")
    finally:
        sink.terminate()
        sink.wait(timeout=10)


if __name__ == "__main__":
    main()
