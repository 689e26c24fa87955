"""A fault-injection TCP proxy (in the spirit of toxiproxy, or Jepsen's network faults) to put
between a Runlater node and the suite's Postgres, and to switch modes while the node runs.

Modes, each switched by a plain synchronous method (no await: callable from any code in the
trio thread, an asyncio callback under trio-asyncio included), taking effect at once:

- ``pass_through()`` (the default): bytes flow both ways as read.
- ``blackhole()``: a stalled network: a cable pulled, a partition, a peer gone silent without
  a FIN or RST. Nothing is dropped: the proxy stops reading, so the kernel buffers fill as
  they would while TCP retransmits, and everything held is delivered in order once healed.
  A new connection is accepted at TCP level (the kernel does that anyway), but the proxy opens
  its upstream connection only when healed: the client's connect succeeds while its startup
  handshake hangs, and Postgres sees no half-open session it could time out
  (``authentication_timeout``) during a long stall.
- ``reset()``: every current connection is aborted with an RST on both sides (a middlebox or
  peer dropping state, a server restart); while the mode stays, new connections are accepted
  and reset at once, which a client sees as a connection refused or reset.
  ``reset_connections()`` resets the current connections once, leaving the mode as it is.
- ``slow(delay_s)``: added latency: each chunk goes out ``delay_s`` after it was read, in each
  direction and in order; reading goes on meanwhile, so throughput is not one chunk per delay.

A peer's close reaches the other side as a close, a peer's reset (or a write failing) as a
reset; both are held in a blackhole like data.

Not modelled: half-closes (EOF on either side, after what was read is delivered, closes the
whole connection; Postgres never half-closes); packet loss, reordering or bandwidth caps; and
anything the kernel does below the proxy. In particular a client's TCP keepalive or
``TCP_USER_TIMEOUT`` never expires in a blackhole: the proxy's kernel still ACKs the client's
segments and keepalive probes into the proxy's socket buffers. Only application-level
timeouts (query timeouts, pool health checks) notice the stall, as they would in front of a
stopped (SIGSTOP) server; a dropped-packet partition needs iptables or a network namespace.
"""

from __future__ import annotations

import contextlib
import enum
import socket
import struct
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import trio

CHUNK_BYTES = 65536
# Chunks read but not yet written, per direction. Bounded, so that a peer that does not read
# makes the proxy stop reading too (backpressure), as a real path would.
QUEUE_CHUNKS = 64
# What a link's tasks may raise when a peer closes or resets: the end of that link only.
LINK_ERRORS = (trio.BrokenResourceError, trio.ClosedResourceError, OSError)


class Mode(enum.StrEnum):
    PASS_THROUGH = "pass_through"
    BLACKHOLE = "blackhole"
    RESET = "reset"
    SLOW = "slow"


@dataclass(eq=False)
class _Link:
    """One proxied connection: the scope whose cancellation ends it, closing both sides (with
    an RST when ``abort`` is set)."""

    scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    abort: bool = False


class FaultProxy:
    """The proxy's state and mode switches; get one from :func:`fault_proxy`."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.port = 0
        self.connections_accepted = 0
        self._links: set[_Link] = set()
        self._mode = Mode.PASS_THROUGH
        self._delay_s = 0.0
        self._changed = trio.Event()

    @property
    def mode(self) -> Mode:
        return self._mode

    @property
    def connections_open(self) -> int:
        return len(self._links)

    def dsn(self, original: str) -> str:
        """``original`` (a ``postgresql://`` URL) with the proxy's host and port; user,
        password, database and other parameters are kept. ``host``/``port`` query parameters,
        which would override the netloc, are dropped; multi-host DSNs are not supported."""
        parts = urlsplit(original)
        userinfo, at, _ = parts.netloc.rpartition("@")
        query = [(k, v) for k, v in parse_qsl(parts.query) if k not in ("host", "port")]
        netloc = f"{userinfo}{at}127.0.0.1:{self.port}"
        return urlunsplit(parts._replace(netloc=netloc, query=urlencode(query)))

    def pass_through(self) -> None:
        self._switch(Mode.PASS_THROUGH)

    def blackhole(self) -> None:
        self._switch(Mode.BLACKHOLE)

    def slow(self, delay_s: float) -> None:
        if delay_s < 0:
            raise ValueError("delay_s must be >= 0")
        self._switch(Mode.SLOW, delay_s)

    def reset(self) -> None:
        self._switch(Mode.RESET)
        self.reset_connections()

    def reset_connections(self) -> None:
        """Abort every current connection with an RST on both sides (done by each link's own
        task, at its next checkpoint); the mode, for new connections, stays."""
        for link in self._links:
            link.abort = True
            link.scope.cancel()

    async def wait_until(self, predicate: Callable[[], bool], timeout_s: float = 5.0) -> None:
        """Wait, with a deadline, until ``predicate()`` holds (checked after every change of
        mode or of the connection counts)."""
        with trio.fail_after(timeout_s):
            while not predicate():
                await self._changed.wait()

    def _switch(self, mode: Mode, delay_s: float = 0.0) -> None:
        self._mode, self._delay_s = mode, delay_s
        self._notify()

    def _notify(self) -> None:
        # Event.set() is synchronous and wakes every waiter; waiters re-read the state.
        self._changed.set()
        self._changed = trio.Event()

    async def _until_flowing(self) -> None:
        while self._mode is Mode.BLACKHOLE:
            await self._changed.wait()

    async def _handle(self, client: trio.SocketStream) -> None:
        """One accepted connection, from accept to both sides closed."""
        link = _Link()
        upstream: trio.SocketStream | None = None
        self._links.add(link)
        self.connections_accepted += 1
        self._notify()
        try:
            with link.scope:
                if self._mode is Mode.RESET:
                    link.abort = True
                    return
                await self._until_flowing()
                try:
                    upstream = await trio.open_tcp_stream(self.target_host, self.target_port)
                except OSError:
                    link.abort = True  # upstream refused: so is the client
                    return
                async with trio.open_nursery() as nursery:
                    for src, dst in ((client, upstream), (upstream, client)):
                        queue_in, queue_out = trio.open_memory_channel[tuple[float, bytes]](
                            QUEUE_CHUNKS
                        )
                        nursery.start_soon(self._read, link, src, queue_in)
                        nursery.start_soon(self._write, link, queue_out, dst)
        finally:
            # Closed synchronously: an await here, when the proxy itself is being cancelled,
            # would raise Cancelled and leave the other socket open.
            for stream in (client, upstream):
                if stream is not None:
                    if link.abort:
                        with contextlib.suppress(OSError):
                            stream.socket.setsockopt(
                                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                            )
                    stream.socket.close()
            self._links.discard(link)
            self._notify()

    async def _read(
        self,
        link: _Link,
        src: trio.SocketStream,
        queue: trio.MemorySendChannel[tuple[float, bytes]],
    ) -> None:
        """Read chunks while not blackholed, stamped with when they were read. At EOF, or a
        reset, close the queue: the writer ends the link once it has delivered the rest (with
        an RST when this side was reset: ``abort`` is set before the queue closes)."""
        async with queue:
            try:
                while True:
                    await self._until_flowing()
                    data = await src.receive_some(CHUNK_BYTES)
                    if not data:
                        return
                    await queue.send((trio.current_time(), data))
            except LINK_ERRORS:
                link.abort = True  # reset (or broken) on one side: reset on the other

    async def _write(
        self,
        link: _Link,
        queue: trio.MemoryReceiveChannel[tuple[float, bytes]],
        dst: trio.SocketStream,
    ) -> None:
        """Write each chunk when it is due (read time + the current delay) and the link is not
        blackholed; after the last, or on error, end the link."""
        try:
            async for read_at, data in queue:
                while True:
                    await self._until_flowing()
                    due = read_at + self._delay_s
                    if trio.current_time() >= due:
                        break
                    changed = self._changed
                    with trio.move_on_at(due):
                        await changed.wait()  # or a mode change: reconsider
                await dst.send_all(data)
        except LINK_ERRORS:
            link.abort = True
        await self._end(link)

    async def _end(self, link: _Link) -> None:
        """End the link (both sides closed), but not through a blackhole: a peer's FIN or RST
        read just before the stall is held like data."""
        await self._until_flowing()
        link.scope.cancel()


@asynccontextmanager
async def fault_proxy(target_host: str, target_port: int) -> AsyncIterator[FaultProxy]:
    """A :class:`FaultProxy` listening on 127.0.0.1 (``proxy.port``), forwarding to
    ``target_host:target_port``; on exit every connection is closed, blackholed or not."""
    proxy = FaultProxy(target_host, target_port)
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, proxy._handle, 0, host="127.0.0.1"))
        proxy.port = listeners[0].socket.getsockname()[1]
        try:
            yield proxy
        finally:
            nursery.cancel_scope.cancel()
