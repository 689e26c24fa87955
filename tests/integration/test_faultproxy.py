"""The fault-injection proxy (tests/helpers/faultproxy.py) against a tiny trio echo server, and
once against the suite's real Postgres.

Waiting is on events (connection counts, bytes received) under a deadline. The one exception is
showing that nothing arrives through a blackhole: that takes an observation window, which only
bounds how long the test looks (``SILENCE_S``), never what it expects to see.
"""

from __future__ import annotations

import asyncio
import os
import socket
import struct
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from urllib.parse import urlsplit

import asyncpg
import pytest
import trio
import trio_asyncio

from tests.helpers.faultproxy import FaultProxy, Mode, fault_proxy

SILENCE_S = 0.3
DEADLINE_S = 5.0


@dataclass
class Echo:
    """Echoes every byte back; counts connections and keeps everything it received. A chunk
    containing ``QUIT`` makes it close that connection instead, ``RESET`` abort it (RST)."""

    port: int = 0
    received: bytearray = field(default_factory=bytearray)
    connections_opened: int = 0
    open_connections: int = 0
    _changed: trio.Event = field(default_factory=trio.Event)

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        with trio.fail_after(DEADLINE_S):
            while not predicate():
                await self._changed.wait()

    async def handle(self, stream: trio.SocketStream) -> None:
        self.connections_opened += 1
        self.open_connections += 1
        self._notify()
        try:
            while data := await stream.receive_some(65536):
                self.received += data
                self._notify()
                if b"QUIT" in data:
                    return
                if b"RESET" in data:
                    stream.socket.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                    )
                    return
                await stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            await trio.aclose_forcefully(stream)
            self.open_connections -= 1
            self._notify()


@dataclass
class Rig:
    """An echo server, a proxy in front of it, and the test's clients (closed at the end)."""

    echo: Echo
    proxy: FaultProxy
    clients: list[trio.SocketStream] = field(default_factory=list)

    async def connect(self) -> trio.SocketStream:
        client = await trio.open_tcp_stream("127.0.0.1", self.proxy.port)
        self.clients.append(client)
        return client


@asynccontextmanager
async def echo_and_proxy() -> AsyncIterator[Rig]:
    echo = Echo()
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, echo.handle, 0, host="127.0.0.1"))
        echo.port = listeners[0].socket.getsockname()[1]
        async with fault_proxy("127.0.0.1", echo.port) as proxy:
            rig = Rig(echo, proxy)
            try:
                yield rig
            finally:
                for client in rig.clients:
                    await trio.aclose_forcefully(client)
        nursery.cancel_scope.cancel()


async def receive_exactly(stream: trio.SocketStream, n: int) -> bytes:
    buf = bytearray()
    with trio.fail_after(DEADLINE_S):
        while len(buf) < n:
            data = await stream.receive_some(n - len(buf))
            if not data:
                raise EOFError(f"EOF after {len(buf)} of {n} bytes")
            buf += data
    return bytes(buf)


async def round_trip(stream: trio.SocketStream, data: bytes) -> bytes:
    await stream.send_all(data)
    return await receive_exactly(stream, len(data))


async def assert_silent(stream: trio.SocketStream) -> None:
    with trio.move_on_after(SILENCE_S):
        data = await stream.receive_some(65536)
        pytest.fail(f"received {data!r} through a blackhole")


async def assert_reset(stream: trio.SocketStream) -> None:
    """The proxy aborted this connection with an RST (not a FIN: that would read as EOF)."""
    with trio.fail_after(DEADLINE_S), pytest.raises(trio.BrokenResourceError) as caught:
        await stream.receive_some(65536)
    assert isinstance(caught.value.__cause__, ConnectionResetError)


async def test_pass_through_echoes_and_counts_connections() -> None:
    async with echo_and_proxy() as rig:
        echo, proxy = rig.echo, rig.proxy
        assert proxy.mode is Mode.PASS_THROUGH
        first, second = await rig.connect(), await rig.connect()
        assert await round_trip(first, b"hello") == b"hello"
        assert await round_trip(second, b"world") == b"world"
        assert (proxy.connections_accepted, proxy.connections_open) == (2, 2)
        big = os.urandom(1_000_000)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(first.send_all, big)
            assert await receive_exactly(first, len(big)) == big
        await first.aclose()
        await proxy.wait_until(lambda: proxy.connections_open == 1)
        await echo.wait_until(lambda: echo.open_connections == 1)  # closed upstream too
        assert await round_trip(second, b"still here") == b"still here"
        await second.aclose()


async def test_upstream_close_closes_client_and_spares_the_others() -> None:
    async with echo_and_proxy() as rig:
        echo, proxy = rig.echo, rig.proxy
        doomed, other = await rig.connect(), await rig.connect()
        assert await round_trip(other, b"a") == b"a"
        await doomed.send_all(b"QUIT")
        with trio.fail_after(DEADLINE_S):
            assert await doomed.receive_some(100) == b""
        await proxy.wait_until(lambda: proxy.connections_open == 1)
        assert await round_trip(other, b"b") == b"b"
        assert echo.open_connections == 1


async def test_upstream_reset_resets_the_client() -> None:
    async with echo_and_proxy() as rig:
        client = await rig.connect()
        await client.send_all(b"RESET")
        await assert_reset(client)
        await rig.proxy.wait_until(lambda: rig.proxy.connections_open == 0)


async def test_unreachable_upstream_resets_the_client() -> None:
    with socket.socket() as unused:  # a port nothing listens on
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    async with fault_proxy("127.0.0.1", port) as proxy:
        client = await trio.open_tcp_stream("127.0.0.1", proxy.port)
        async with client:
            await assert_reset(client)
        assert (proxy.connections_accepted, proxy.connections_open) == (1, 0)


async def test_blackhole_holds_bytes_and_delivers_them_in_order_after_heal() -> None:
    async with echo_and_proxy() as rig:
        echo, proxy = rig.echo, rig.proxy
        client = await rig.connect()
        assert await round_trip(client, b"warm") == b"warm"
        proxy.blackhole()
        payload = b"".join(b"<%06d>" % i for i in range(100_000))  # 800 kB, many chunks
        async with trio.open_nursery() as nursery:
            nursery.start_soon(client.send_all, payload)
            await assert_silent(client)
            assert bytes(echo.received) == b"warm"  # nothing reached the server either
            proxy.pass_through()
            assert await receive_exactly(client, len(payload)) == payload
        assert bytes(echo.received) == b"warm" + payload


async def test_blackhole_hangs_new_connections_until_healed() -> None:
    async with echo_and_proxy() as rig:
        echo, proxy = rig.echo, rig.proxy
        proxy.blackhole()
        client = await rig.connect()  # the TCP connect itself succeeds
        await proxy.wait_until(lambda: proxy.connections_accepted == 1)
        await client.send_all(b"startup")
        await assert_silent(client)
        assert echo.connections_opened == 0  # the upstream connection waits for the heal
        proxy.pass_through()
        assert await receive_exactly(client, 7) == b"startup"
        assert echo.connections_opened == 1


async def test_blackhole_holds_a_close_until_healed() -> None:
    async with echo_and_proxy() as rig:
        echo, proxy = rig.echo, rig.proxy
        client = await rig.connect()
        assert await round_trip(client, b"warm") == b"warm"
        proxy.blackhole()
        await client.aclose()
        with trio.move_on_after(SILENCE_S):
            await echo.wait_until(lambda: echo.open_connections == 0)
            pytest.fail("the client's close went through a blackhole")
        proxy.pass_through()
        await echo.wait_until(lambda: echo.open_connections == 0)
        await proxy.wait_until(lambda: proxy.connections_open == 0)


async def test_reset_aborts_current_connections_and_refuses_new_ones_until_healed() -> None:
    async with echo_and_proxy() as rig:
        echo, proxy = rig.echo, rig.proxy
        first, second = await rig.connect(), await rig.connect()
        assert await round_trip(first, b"1") == b"1"
        assert await round_trip(second, b"2") == b"2"
        proxy.reset()
        await assert_reset(first)
        await assert_reset(second)
        await echo.wait_until(lambda: echo.open_connections == 0)  # upstream sides too
        assert proxy.connections_open == 0

        refused = await rig.connect()  # accepted by the kernel, then reset
        await assert_reset(refused)
        assert echo.connections_opened == 2

        proxy.pass_through()
        healed = await rig.connect()
        assert await round_trip(healed, b"back") == b"back"
        assert (proxy.connections_accepted, echo.connections_opened) == (4, 3)


async def test_reset_connections_keeps_the_mode_for_new_connections() -> None:
    async with echo_and_proxy() as rig:
        proxy = rig.proxy
        old = await rig.connect()
        assert await round_trip(old, b"x") == b"x"
        proxy.reset_connections()
        await assert_reset(old)
        assert proxy.mode is Mode.PASS_THROUGH
        new = await rig.connect()
        assert await round_trip(new, b"y") == b"y"


async def test_slow_delays_each_direction_and_keeps_order() -> None:
    delay_s = 0.2
    async with echo_and_proxy() as rig:
        proxy = rig.proxy
        client = await rig.connect()
        assert await round_trip(client, b"warm") == b"warm"
        proxy.slow(delay_s)
        started = trio.current_time()
        assert await round_trip(client, b"ping") == b"ping"
        assert trio.current_time() - started >= 2 * delay_s  # there and back

        messages = [b"<%03d>" % i for i in range(50)]
        started = trio.current_time()
        for message in messages:  # separate writes: separate chunks, mostly
            await client.send_all(message)
        assert await receive_exactly(client, 250) == b"".join(messages)
        assert trio.current_time() - started >= 2 * delay_s

        proxy.pass_through()
        assert await round_trip(client, b"fast again") == b"fast again"


async def test_exit_is_prompt_with_blackholed_connections() -> None:
    echo = Echo()
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, echo.handle, 0, host="127.0.0.1"))
        echo_port = listeners[0].socket.getsockname()[1]
        with trio.fail_after(DEADLINE_S):
            async with fault_proxy("127.0.0.1", echo_port) as proxy:
                stalled = await trio.open_tcp_stream("127.0.0.1", proxy.port)
                assert await round_trip(stalled, b"warm") == b"warm"
                proxy.blackhole()
                await stalled.send_all(b"held")
                waiting = await trio.open_tcp_stream("127.0.0.1", proxy.port)  # not yet upstream
                await proxy.wait_until(lambda: proxy.connections_open == 2)
        # The proxy is gone: what it held is dropped and the client sides are closed.
        for client in (stalled, waiting):
            assert await client.receive_some(100) == b""
            await client.aclose()
        nursery.cancel_scope.cancel()


def test_dsn_goes_through_the_proxy() -> None:
    proxy = FaultProxy("db.internal", 5432)
    proxy.port = 40000
    dsn = "postgresql://user:p%40ss@db.internal:5432/app%2Fdb?sslmode=disable&host=/tmp"
    assert proxy.dsn(dsn) == "postgresql://user:p%40ss@127.0.0.1:40000/app%2Fdb?sslmode=disable"
    assert proxy.dsn("postgres://db.internal/app") == "postgres://127.0.0.1:40000/app"


async def test_real_postgres_through_the_proxy(
    aio_loop: asyncio.AbstractEventLoop, database_url: str
) -> None:
    target = urlsplit(database_url)
    connect_pg = trio_asyncio.aio_as_trio(asyncpg.connect)
    async with fault_proxy(target.hostname or "127.0.0.1", target.port or 5432) as proxy:
        dsn = proxy.dsn(database_url)
        conn = await connect_pg(dsn)
        try:
            assert await trio_asyncio.aio_as_trio(conn.fetchval)("select 1") == 1
            proxy.blackhole()
            with pytest.raises(TimeoutError):
                await trio_asyncio.aio_as_trio(conn.fetchval)("select 1", timeout=0.5)
            with pytest.raises(TimeoutError):
                await connect_pg(dsn, timeout=0.5)  # the startup handshake hangs
            # Healed from an asyncio callback: the mode switches are plain synchronous calls.
            aio_loop.call_soon(proxy.pass_through)
            await proxy.wait_until(lambda: proxy.mode is Mode.PASS_THROUGH)
            fresh = await connect_pg(dsn)
            try:
                assert await trio_asyncio.aio_as_trio(fresh.fetchval)("select 1") == 1
            finally:
                await trio_asyncio.aio_as_trio(fresh.close)()
        finally:
            conn.terminate()
