"""Hostile delivery targets through the real Deliverer and TrioTransport, against real local
servers: every attempt ends within its timeout + 1 s, stores at most 256 KiB of body, follows
no redirect, and process memory stays flat across many such attempts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio

from runlater.delivery.client import MAX_BODY_BYTES, Attempt, Deliverer
from runlater.delivery.transport import TrioTransport
from runlater.store.records import ClaimedExecution
from tests.helpers.factories import claimed_execution
from tests.helpers.hostile import HostileServer, serve_hostile

TIMEOUT_MS = 2000


def claimed(url: str) -> ClaimedExecution:
    return claimed_execution(url, timeout_ms=TIMEOUT_MS)


@asynccontextmanager
async def deliverer(transport: TrioTransport) -> AsyncIterator[Deliverer]:
    async with transport:
        yield Deliverer(transport)


async def timed(deliver: Deliverer, url: str) -> tuple[Attempt, float]:
    started = trio.current_time()
    attempt = await deliver.deliver(claimed(url))
    return attempt, trio.current_time() - started


# path, expected status, what the recorded error contains, stored body length
HOSTILE = [
    pytest.param("/hang", "timeout", "no complete response within 2000 ms", None, id="hang"),
    pytest.param("/trickle", "timeout", "no complete response", None, id="trickle-head"),
    pytest.param("/trickle-body", "timeout", "no complete response", None, id="trickle-body"),
    pytest.param("/big/50000000", "success", None, MAX_BODY_BYTES, id="50MB-content-length"),
    pytest.param("/endless", "success", None, MAX_BODY_BYTES, id="endless-chunked"),
    pytest.param("/redirect", "failed", "HTTP 302", 0, id="redirect-loop"),
    pytest.param("/huge-headers", "failed", "response head larger than", None, id="huge-headers"),
]


@pytest.mark.parametrize(("path", "status", "error", "body_len"), HOSTILE)
async def test_hostile_target_is_bounded(
    path: str, status: str, error: str | None, body_len: int | None
) -> None:
    transport = TrioTransport(allow_private=True)
    async with serve_hostile() as server, deliverer(transport) as deliver:
        attempt, elapsed = await timed(deliver, server.url + path)
        assert attempt.status == status, attempt.error
        assert elapsed <= TIMEOUT_MS / 1000 + 1.0
        if error is None:
            assert attempt.error is None
        else:
            assert attempt.error is not None and error in attempt.error
        if body_len is None:
            assert attempt.response_body is None
        else:
            assert attempt.response_body is not None
            assert len(attempt.response_body.encode()) == body_len <= MAX_BODY_BYTES
        if path == "/redirect":
            assert attempt.status_code == 302
            assert [r.path for r in server.requests] == ["/redirect"]  # not followed
        # Whatever happened, nothing half-used went back to the pool.
        assert transport.stats.opened - transport.stats.closed == transport.pool.idle_count()
        assert transport.pool.idle_count() == (1 if path == "/redirect" else 0)


async def test_a_blocked_target_is_a_failed_attempt_with_a_clear_error() -> None:
    """The transport is the guard: a loopback target is refused at connect."""
    transport = TrioTransport(allow_private=False)
    async with serve_hostile() as server, deliverer(transport) as deliver:
        attempt = await deliver.deliver(claimed(server.url + "/hook"))
        assert attempt.status == "failed"
        assert attempt.error is not None and "url not allowed: " in attempt.error
        assert server.connections_opened == 0


def rss_bytes() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


MIX = ["/big/50000000", "/endless", "/huge-headers", "/trickle", "/hang", "/redirect"]


async def attack(deliver: Deliverer, server: HostileServer, count: int) -> list[float]:
    """``count`` hostile attempts, all at once; returns each one's duration."""
    durations: list[float] = []

    async def one(path: str) -> None:
        attempt, elapsed = await timed(deliver, server.url + path)
        assert attempt.response_body is None or len(attempt.response_body) <= MAX_BODY_BYTES
        durations.append(elapsed)

    async with trio.open_nursery() as nursery:
        for i in range(count):
            nursery.start_soon(one, MIX[i % len(MIX)])
    return durations


async def test_memory_stays_flat_across_hostile_attempts() -> None:
    transport = TrioTransport(allow_private=True)
    async with serve_hostile() as server, deliverer(transport) as deliver:
        await attack(deliver, server, len(MIX))  # warm-up: imports, first buffers
        before = rss_bytes()
        durations: list[float] = []
        for _ in range(3):
            durations += await attack(deliver, server, 20)
        growth = rss_bytes() - before
        print(f"RSS growth across 60 hostile attempts: {growth / 2**20:.1f} MiB")
        assert len(durations) == 60
        assert max(durations) <= TIMEOUT_MS / 1000 + 1.0
        assert growth < 50 * 2**20
        assert transport.stats.opened - transport.stats.closed == transport.pool.idle_count()
