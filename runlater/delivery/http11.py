"""One HTTP/1.1 client connection on a trio stream (h11), and the response body stream.

Kept deliberately small: the pooling, SSRF and TLS decisions live in ``transport``. What this
module guarantees:

- a connection is either idle and reusable (h11 in IDLE/IDLE after a complete exchange) or it
  is closed — any exception or cancellation while it is in use closes it (``close`` is
  synchronous, so it cannot itself be interrupted by a cancellation);
- failing before the first byte of a response raises ``NoResponse``, which the transport
  turns into one retry when the connection was a kept-alive one the server had dropped;
- response heads are bounded (h11's ``max_incomplete_event_size``) and bodies are read lazily,
  bounded by ``max_body_bytes``, and passed through raw (no decompression).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeGuard, cast

import h11
import httpx
import trio

READ_SIZE = 65536
Headers = list[tuple[bytes, bytes]]
Timeouts = dict[str, Any]  # httpx's request.extensions["timeout"]: connect/read/write/pool


def binding(limit_s: float | None) -> TypeGuard[float]:
    """Whether an httpx per-operation timeout could fire before the caller's trio deadline.

    When the enclosing deadline is sooner (the Deliverer runs each attempt under
    ``trio.fail_after``), a scope of our own would never fire: skipping it saves a cancel
    scope per read and changes nothing."""
    return limit_s is not None and trio.current_time() + limit_s < trio.current_effective_deadline()


class NoResponse(Exception):
    """Internal: the exchange failed before any byte of a response arrived. Carries the httpx
    error to raise when the transport does not retry."""

    def __init__(self, error: httpx.TransportError) -> None:
        super().__init__(str(error))
        self.error = error


class Connection:
    """An h11 client connection; ``sock`` is the raw trio socket (for liveness and close)."""

    __slots__ = ("closed", "h11", "idle_since", "max_header_bytes", "on_close", "sock", "stream")

    def __init__(
        self,
        stream: trio.abc.Stream,
        sock: trio.socket.SocketType,
        *,
        max_header_bytes: int,
        on_close: Callable[[], None],
    ) -> None:
        self.stream = stream
        self.sock = sock
        self.h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=max_header_bytes)
        self.max_header_bytes = max_header_bytes
        self.on_close = on_close
        self.idle_since = 0.0
        self.closed = False

    def is_alive(self) -> bool:
        """For an idle connection: a readable socket means EOF or unsolicited bytes — unusable.
        One poll() on this one connection, never a scan of the pool."""
        return not self.closed and not self.sock.is_readable()

    def close(self) -> None:
        """Close now, without a TLS close_notify: safe in cancelled scopes and finally blocks."""
        if not self.closed:
            self.closed = True
            self.sock.close()
            self.on_close()

    async def _receive(self, limit_s: float | None) -> bytes:
        # A socket stream returns bytes (the Stream interface also allows a bytearray).
        if not binding(limit_s):
            return cast(bytes, await self.stream.receive_some(READ_SIZE))
        with trio.move_on_after(limit_s):
            return cast(bytes, await self.stream.receive_some(READ_SIZE))
        raise httpx.ReadTimeout(f"no data from the server within {limit_s:g} s")

    async def send_request(
        self, method: bytes, target: bytes, headers: Headers, body: bytes, timeouts: Timeouts
    ) -> h11.Response:
        """Send the whole request, then read up to the response head (1xx skipped)."""
        conn = self.h11
        try:
            data = conn.send(h11.Request(method=method, target=target, headers=headers))
            if body:
                data += conn.send(h11.Data(data=body))
            data += conn.send(h11.EndOfMessage())
        except h11.LocalProtocolError as exc:
            raise httpx.LocalProtocolError(f"invalid request: {exc}") from None
        write_timeout = timeouts.get("write")
        try:
            if not binding(write_timeout):
                await self.stream.send_all(data)
            else:
                with trio.move_on_after(write_timeout) as scope:
                    await self.stream.send_all(data)
                if scope.cancelled_caught:
                    raise httpx.WriteTimeout(f"request not sent within {write_timeout:g} s")
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            raise NoResponse(httpx.WriteError(f"connection lost while sending: {exc}")) from None
        read_timeout = timeouts.get("read")
        received = 0
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                if received > self.max_header_bytes:
                    msg = f"response head larger than {self.max_header_bytes} bytes"
                    raise httpx.RemoteProtocolError(msg) from None
                raise httpx.RemoteProtocolError(f"invalid response: {exc}") from None
            if event is h11.NEED_DATA:
                try:
                    chunk = await self._receive(read_timeout)
                except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                    error = httpx.ReadError(f"connection lost before the response: {exc}")
                    if received:
                        raise error from None
                    raise NoResponse(error) from None
                if not chunk and not received:
                    msg = "server closed the connection without sending a response"
                    raise NoResponse(httpx.RemoteProtocolError(msg))
                received += len(chunk)
                conn.receive_data(chunk)
            elif type(event) is h11.Response:
                return event
            elif type(event) is h11.ConnectionClosed:  # pragma: no cover - EOF handled above
                raise httpx.RemoteProtocolError("server closed the connection mid-response")
            # h11.InformationalResponse (1xx): keep reading for the final response

    async def receive_body(self, read_timeout: float | None) -> bytes | None:
        """The next chunk of the response body, or None at its end."""
        conn = self.h11
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                raise httpx.RemoteProtocolError(f"invalid response body: {exc}") from None
            if type(event) is h11.Data:
                return bytes(event.data)
            if type(event) is h11.EndOfMessage:
                return None
            if event is h11.NEED_DATA:
                try:
                    chunk = await self._receive(read_timeout)
                except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                    raise httpx.ReadError(
                        f"connection lost while reading the body: {exc}"
                    ) from None
                conn.receive_data(chunk)
            else:
                raise httpx.RemoteProtocolError("server closed the connection mid-response")

    def finish_cycle(self) -> bool:
        """After a complete response: ready the connection for the next request if both sides
        keep it alive (no ``Connection: close``, no close-delimited body)."""
        conn = self.h11
        if conn.our_state is h11.DONE and conn.their_state is h11.DONE:
            conn.start_next_cycle()
            return True
        return False


class ResponseStream(httpx.AsyncByteStream):
    """The body of one response, read on demand from its connection.

    At the end of the body the connection goes back to the pool (``release``); closing the
    stream earlier, an error, a cancellation or reaching ``max_body_bytes`` closes it instead,
    so a half-read connection is never reused. Implemented as an iterator, not an async
    generator, so an abandoned iteration leaves nothing for the garbage collector to finish.
    """

    def __init__(
        self,
        conn: Connection,
        release: Callable[[Connection], None],
        *,
        max_body_bytes: int,
        read_timeout: float | None,
    ) -> None:
        self._conn: Connection | None = conn
        self._release = release
        self._remaining = max_body_bytes
        self._read_timeout = read_timeout
        # The response's own extensions dict (httpx copies the one it is given): a truncated
        # body is marked there as ``runlater_truncated``.
        self.extensions: dict[str, Any] = {}

    def __aiter__(self) -> ResponseStream:
        return self

    async def __anext__(self) -> bytes:
        conn = self._conn
        if conn is None:
            raise StopAsyncIteration
        try:
            chunk = await conn.receive_body(self._read_timeout)
        except BaseException:
            self._discard()
            raise
        if chunk is None:
            self._conn = None
            if conn.finish_cycle():
                self._release(conn)
            else:
                conn.close()
            raise StopAsyncIteration
        if len(chunk) > self._remaining:
            chunk = chunk[: self._remaining]
            self.extensions["runlater_truncated"] = True
            self._discard()
            if not chunk:
                raise StopAsyncIteration
        self._remaining -= len(chunk)
        return chunk

    def _discard(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    async def aclose(self) -> None:
        self._discard()
