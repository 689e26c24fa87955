"""A minimal keep-alive HTTP/1.1 client on trio streams + h11 (for load generation).

Reconnects transparently when the server closes the connection (hypercorn does after 1,000
requests) or when a kept-alive connection turns out to be dead before anything was answered.
"""

from __future__ import annotations

import h11
import trio


class H11Connection:
    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.stream: trio.SocketStream | None = None
        self.conn: h11.Connection | None = None
        self.connects = 0

    async def _connect(self) -> None:
        self.stream = await trio.open_tcp_stream(self.host, self.port)
        self.conn = h11.Connection(h11.CLIENT)
        self.connects += 1

    async def close(self) -> None:
        if self.stream is not None:
            await self.stream.aclose()
        self.stream = None
        self.conn = None

    async def request(
        self, method: str, target: str, headers: list[tuple[str, str]], body: bytes = b""
    ) -> tuple[int, bytes]:
        for attempt in range(2):
            reused = self.stream is not None
            if not reused:
                await self._connect()
            try:
                return await self._exchange(method, target, headers, body)
            except (
                trio.BrokenResourceError,
                trio.ClosedResourceError,
                h11.RemoteProtocolError,
                ConnectionError,
                EOFError,
            ):
                await self.close()
                if not reused or attempt:  # only a kept-alive connection may have gone stale
                    raise
        raise RuntimeError("unreachable")

    async def _exchange(
        self, method: str, target: str, headers: list[tuple[str, str]], body: bytes
    ) -> tuple[int, bytes]:
        assert self.stream is not None and self.conn is not None
        conn, stream = self.conn, self.stream
        all_headers = [("host", f"{self.host}:{self.port}"), *headers]
        if body or method in ("POST", "PUT", "PATCH"):
            all_headers.append(("content-length", str(len(body))))
        data = conn.send(h11.Request(method=method, target=target, headers=all_headers))
        if body:
            data += conn.send(h11.Data(data=body))
        data += conn.send(h11.EndOfMessage())
        await stream.send_all(data)
        status = 0
        payload = bytearray()
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                chunk = await stream.receive_some(65536)
                if not chunk:
                    raise EOFError("server closed the connection")
                conn.receive_data(chunk)
                continue
            if isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                payload += event.data
            elif isinstance(event, h11.EndOfMessage):
                break
            elif isinstance(event, h11.ConnectionClosed):
                raise EOFError("server closed the connection")
        if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
            await self.close()
        else:
            conn.start_next_cycle()
        return status, bytes(payload)
