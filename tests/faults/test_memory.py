"""Memory stays flat: what a node keeps per database call and per request is released.

The leak this guards against: asyncpg's ``command_timeout`` armed an asyncio timer for every
statement, which trio-asyncio keeps (with the request's whole context) until it would have
fired, 60 s later — about 1 to 14 KB per call, linear in the call rate. Measured with tracemalloc
(Python allocations, not RSS, which the allocator and the OS blur), after a warm-up that fills
every cache, statement cache and pool.
"""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Awaitable, Callable

import httpx
import trio

from runlater.config import Settings
from runlater.node import run_node
from tests.helpers.factories import make_org

SETTINGS = Settings(
    host="127.0.0.1",
    port=0,
    allow_private_targets=True,
    rate_limit_per_ip=0,
    rate_limit_per_key=0,
    min_workers=1,
    max_workers=4,
)
BOUND_BYTES = 1024 * 1024  # measured: 255 KiB; the old leak kept 9 MiB over the same calls


async def _repeat(times: int, call: Callable[[], Awaitable[object]]) -> None:
    for _ in range(times):
        await call()


async def test_store_calls_and_requests_keep_no_memory(aio_loop: object, database_url: str) -> None:
    """After warm-up, 1,200 store calls and 1,200 HTTP requests (liveness, readiness, task
    creation and reads) against a real node grow Python's heap by less than 1 MiB."""
    async with trio.open_nursery() as nursery:
        node = await nursery.start(run_node, SETTINGS, database_url)
        _, key = await make_org(node.store)
        async with httpx.AsyncClient(
            base_url=node.web.bound[0], headers={"Authorization": f"Bearer {key}"}
        ) as http:

            async def create() -> None:
                reply = await http.post(
                    "/api/v1/tasks", json={"url": "http://127.0.0.1:9999/x", "delay": "1h"}
                )
                assert reply.status_code == 202

            async def round_of(n: int) -> None:
                await _repeat(3 * n, node.store.ping)
                await _repeat(n, lambda: http.get("/health"))
                await _repeat(n, lambda: http.get("/health/ready"))
                await _repeat(n // 2, create)
                await _repeat(n // 2, lambda: http.get("/api/v1/tasks?limit=5"))

            await round_of(300)  # warm-up: pools, statement caches, lazily built things
            gc.collect()
            tracemalloc.start(1)
            try:
                before, _ = tracemalloc.get_traced_memory()
                await round_of(400)
                gc.collect()
                after, _ = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
        nursery.cancel_scope.cancel()
    assert after - before < BOUND_BYTES, f"grew {(after - before) / 1024:.0f} KiB"
