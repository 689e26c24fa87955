"""``SELECT 1`` through asyncpg's pool on plain asyncio: the driver's own cost per call.

``python -m bench.asyncpg_loop --dsn DSN`` prints one JSON line (CPU µs per call, best of 3
batches). Its own process on purpose: importing trio-asyncio (as anything of runlater's store
does) replaces asyncio's event loop policy, so this must not share a process with it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource

import asyncpg


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def per_call_us(dsn: str, n: int) -> float:
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2, command_timeout=60)
    try:

        async def one() -> None:
            async with pool.acquire(timeout=5) as conn:
                await conn.fetchval("select 1")

        for _ in range(300):
            await one()
        best = float("inf")
        for _ in range(3):
            started = cpu_s()
            for _ in range(n):
                await one()
            best = min(best, (cpu_s() - started) / n * 1e6)
        return round(best, 1)
    finally:
        await pool.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--n", type=int, default=1000)
    args = parser.parse_args()
    print(json.dumps({"asyncio_select1": asyncio.run(per_call_us(args.dsn, args.n))}), flush=True)


if __name__ == "__main__":
    main()
