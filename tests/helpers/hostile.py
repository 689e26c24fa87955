"""A real local HTTP/1.1 server (trio + h11, optionally TLS) that misbehaves on demand.

It counts connections (opened, still open), records every request with the connection it came
on and, over TLS, the SNI name each handshake carried. Behaviour by path:

- ``/`` and anything unlisted: 200 "ok" (keep-alive); a HEAD gets the headers only;
- ``/status/<code>``: that status (204 and 304 without a body);
- ``/chunked/<n>``: a chunked body of n chunks ``chunk-<i>;``;
- ``/close``: 200 with ``Connection: close``; ``/drop``: closes without answering;
- ``/redirect``: 302 to itself; ``/set-cookie``: 200 with a session cookie;
- ``/hang``: never answers (but notices the client leaving);
- ``/trickle``: a response head, one byte per second, never ending;
- ``/trickle-body``: a complete head, then the body one byte per second;
- ``/big/<n>``: an n-byte body with Content-Length, sent as fast as the client reads;
- ``/endless``: a chunked body that never ends;
- ``/huge-headers``: header lines without end;
- ``/slow-body``: a head promising 1 MB, 1,000 bytes, then silence.

Server-wide options: ``answer_limit`` (per connection, answer that many requests, then read the
next one and close without answering: a kept-alive connection found dead at send time),
``close_every`` (every n-th response on a connection carries ``Connection: close``, as hypercorn
does after ``keep_alive_max_requests``), ``idle_close_s`` (close a kept-alive connection idle
that long).
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial

import h11
import trio

CHUNK = b"x" * 65536


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    connection: int  # 1 for the first connection the server accepted, and so on


@dataclass
class HostileServer:
    ssl_context: ssl.SSLContext | None = None
    answer_limit: int | None = None
    close_every: int | None = None
    idle_close_s: float | None = None
    port: int = 0
    requests: list[Seen] = field(default_factory=list)
    connections_opened: int = 0
    open_connections: int = 0
    sni: list[str | None] = field(default_factory=list)
    flood_bytes: int = 0  # sent by /big, /endless and /huge-headers: what a client let in
    _changed: trio.Event = field(default_factory=trio.Event)

    def __post_init__(self) -> None:
        if self.ssl_context is not None:
            self.ssl_context.sni_callback = self._on_sni

    def _on_sni(self, _sock: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
        self.sni.append(name)

    @property
    def url(self) -> str:
        scheme = "https" if self.ssl_context is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def wait_until(self, predicate: Callable[[], bool], timeout_s: float = 5.0) -> None:
        """Wait, with a deadline, until ``predicate()`` holds (checked after every change)."""
        with trio.fail_after(timeout_s):
            while not predicate():
                await self._changed.wait()

    async def handle(self, stream: trio.abc.Stream) -> None:
        self.connections_opened += 1
        self.open_connections += 1
        number = self.connections_opened
        self._notify()
        if self.ssl_context is not None:
            stream = trio.SSLStream(stream, self.ssl_context, server_side=True)
        conn = h11.Connection(h11.SERVER)
        try:
            answered = 0
            while True:
                idle = self.idle_close_s if answered else None
                request = await _read_request(conn, stream, idle)
                if request is None:
                    return
                path = request.target.decode()
                headers = {k.decode(): v.decode() for k, v in request.headers}
                self.requests.append(Seen(request.method.decode(), path, headers, number))
                self._notify()
                if self.answer_limit is not None and answered >= self.answer_limit:
                    return
                answered += 1
                last = self.close_every is not None and answered % self.close_every == 0
                if not await self._answer(stream, conn, request.method, path, last):
                    return
                conn.start_next_cycle()
        except (h11.ProtocolError, trio.BrokenResourceError, trio.ClosedResourceError):
            return
        finally:
            await trio.aclose_forcefully(stream)
            self.open_connections -= 1
            self._notify()

    async def _answer(
        self, stream: trio.abc.Stream, conn: h11.Connection, method: bytes, path: str, last: bool
    ) -> bool:
        """Answer one request; False when the connection is to end."""
        if path == "/drop":
            return False
        if path == "/hang":
            await _until_client_leaves(stream)
            return False
        if path == "/trickle":
            await stream.send_all(b"HTTP/1.1 200 OK\r\nx-trickle: ")
            while True:
                await trio.sleep(1)
                await stream.send_all(b"a")
        if path == "/trickle-body":
            await stream.send_all(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n")
            while True:
                await trio.sleep(1)
                await stream.send_all(b"a")
        if path.startswith("/big/"):
            size = int(path.split("/")[2])
            await stream.send_all(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % size)
            while size > 0:
                await stream.send_all(CHUNK[:size])
                self.flood_bytes += min(size, len(CHUNK))
                size -= len(CHUNK)
            return False
        if path == "/endless":
            await stream.send_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
            while True:
                await stream.send_all(b"10000\r\n" + CHUNK + b"\r\n")
                self.flood_bytes += len(CHUNK)
        if path == "/huge-headers":
            await stream.send_all(b"HTTP/1.1 200 OK\r\n")
            line = b"x-filler: " + b"h" * 1000 + b"\r\n"
            while True:
                await stream.send_all(line * 64)
                self.flood_bytes += len(line) * 64
        headers = [(b"content-type", b"text/plain")]
        if last or path == "/close":
            headers.append((b"connection", b"close"))
        status, chunks = 200, [b"ok"]
        if path.startswith("/status/"):
            status = int(path.split("/")[2])
            chunks = [] if status in (204, 304) else [b"status %d" % status]
        elif path == "/set-cookie":
            headers.append((b"set-cookie", b"session=tenant-a-secret; Path=/"))
        elif path == "/redirect":
            status, chunks = 302, []
            headers.append((b"location", path.encode()))
        elif path.startswith("/chunked/"):
            chunks = [b"chunk-%d;" % i for i in range(int(path.split("/")[2]))]
            headers.append((b"transfer-encoding", b"chunked"))
        elif path == "/slow-body":
            headers.append((b"content-length", b"1000000"))
            await stream.send_all(conn.send(h11.Response(status_code=200, headers=headers)))
            await stream.send_all(conn.send(h11.Data(data=b"y" * 1000)))
            await _until_client_leaves(stream)
            return False
        if status not in (204, 304) and not path.startswith("/chunked/"):
            headers.append((b"content-length", b"%d" % sum(map(len, chunks))))
        data = conn.send(h11.Response(status_code=status, headers=headers))
        if method != b"HEAD":
            for chunk in chunks:
                data += conn.send(h11.Data(data=chunk)) or b""
        data += conn.send(h11.EndOfMessage()) or b""
        await stream.send_all(data or b"")
        return conn.our_state is h11.DONE


async def _until_client_leaves(stream: trio.abc.Stream) -> None:
    """Say nothing more, but notice when the client closes the connection."""
    while await stream.receive_some(65536):
        pass


async def _read_request(
    conn: h11.Connection, stream: trio.abc.Stream, idle_close_s: float | None
) -> h11.Request | None:
    """The next complete request (its body read and dropped), or None at EOF / idle close."""
    request = None
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            with trio.move_on_after(float("inf") if idle_close_s is None else idle_close_s):
                data = await stream.receive_some(65536)
                conn.receive_data(bytes(data))
                if not data:
                    return None
                continue
            return None  # idle for idle_close_s
        if isinstance(event, h11.Request):
            request = event
            idle_close_s = None  # a request has begun: no idle close in the middle of it
        elif isinstance(event, h11.EndOfMessage):
            return request
        elif isinstance(event, h11.ConnectionClosed):
            return None


@asynccontextmanager
async def serve_hostile(
    *,
    ssl_context: ssl.SSLContext | None = None,
    answer_limit: int | None = None,
    close_every: int | None = None,
    idle_close_s: float | None = None,
) -> AsyncIterator[HostileServer]:
    server = HostileServer(
        ssl_context=ssl_context,
        answer_limit=answer_limit,
        close_every=close_every,
        idle_close_s=idle_close_s,
    )
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, server.handle, 0, host="127.0.0.1"))
        server.port = listeners[0].socket.getsockname()[1]
        yield server
        nursery.cancel_scope.cancel()
