"""A real local HTTP/1.1 server (trio + h11) that records every request.

Behaviour by path: ``/status/<code>`` answers that code, ``/body/<text>`` answers that text,
``?retry_after=N`` adds a Retry-After header, ``/hang`` never answers,
``/slow/<ms>`` answers after a delay, ``/gate/...`` waits until ``/_open_gate`` was called
(requests to it are recorded only once answered), anything else answers 200 "ok". Usable in-process
(``async with serve_sink() as sink``) or as its own process (``python -m tests.helpers.sink``),
which prints ``PORT <n>`` and appends one JSON line per request to ``--log``.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial

import h11
import trio


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.time() when the request was complete


@dataclass
class Sink:
    port: int = 0
    requests: list[Received] = field(default_factory=list)
    arrived: trio.Event = field(default_factory=trio.Event)
    log_path: str | None = None
    gate: trio.Event = field(default_factory=trio.Event)
    held: int = 0  # requests waiting at the gate

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def wait_for(self, count: int, timeout_s: float = 10.0) -> list[Received]:
        with trio.fail_after(timeout_s):
            while len(self.requests) < count:
                await self.arrived.wait()
                self.arrived = trio.Event()
        return self.requests

    def _record(self, received: Received) -> None:
        self.requests.append(received)
        self.arrived.set()
        if self.log_path:
            with open(self.log_path, "a") as fh:
                fh.write(
                    json.dumps(
                        {
                            "method": received.method,
                            "path": received.path,
                            "headers": received.headers,
                            "at": received.at,
                            "body": received.body.decode("utf-8", "replace"),
                        }
                    )
                    + "\n"
                )

    async def handle(self, stream: trio.SocketStream) -> None:
        conn = h11.Connection(h11.SERVER)
        try:
            while True:
                request = None
                body = bytearray()
                while True:
                    event = conn.next_event()
                    if event is h11.NEED_DATA:
                        data = await stream.receive_some(65536)
                        conn.receive_data(data)
                        if not data and conn.their_state is h11.CLOSED:
                            return
                        continue
                    if isinstance(event, h11.Request):
                        request = event
                    elif isinstance(event, h11.Data):
                        body += event.data
                    elif isinstance(event, h11.EndOfMessage):
                        break
                    elif isinstance(event, h11.ConnectionClosed):
                        return
                assert request is not None
                path = request.target.decode()
                headers = {k.decode().lower(): v.decode() for k, v in request.headers}
                received = Received(request.method.decode(), path, headers, bytes(body), 0.0)
                if path.startswith("/gate/"):
                    self.held += 1
                    try:
                        await self.gate.wait()
                    finally:
                        self.held -= 1
                received.at = time.time()
                if path not in ("/_open_gate", "/_held"):
                    self._record(received)
                status, payload = await self._answer(path)
                extra = _query_headers(path)
                await stream.send_all(
                    conn.send(
                        h11.Response(
                            status_code=status,
                            headers=[
                                ("content-length", str(len(payload))),
                                ("content-type", "text/plain"),
                                *extra,
                            ],
                        )
                    )
                )
                await stream.send_all(conn.send(h11.Data(data=payload)))
                await stream.send_all(conn.send(h11.EndOfMessage()))
                conn.start_next_cycle()
        except (h11.RemoteProtocolError, trio.BrokenResourceError, trio.ClosedResourceError):
            return
        finally:
            await stream.aclose()

    async def _answer(self, path: str) -> tuple[int, bytes]:
        path = path.split("?", 1)[0]
        if path == "/_open_gate":
            self.gate.set()
            return 200, b"open"
        if path == "/_held":
            return 200, str(self.held).encode()
        if path.startswith("/status/"):
            code = int(path.split("/")[2])
            return code, f"status {code}".encode()
        if path.startswith("/hang"):
            await trio.sleep_forever()
        if path.startswith("/slow/"):
            await trio.sleep(int(path.split("/")[2]) / 1000)
        if path.startswith("/body/"):
            return 200, path.removeprefix("/body/").encode()
        return 200, b"ok"


def _query_headers(path: str) -> list[tuple[str, str]]:
    """``?retry_after=30`` on any path adds that response header."""
    query = path.partition("?")[2]
    pairs = dict(part.partition("=")[::2] for part in query.split("&") if part)
    return [("retry-after", pairs["retry_after"])] if "retry_after" in pairs else []


@asynccontextmanager
async def serve_sink(port: int = 0, log_path: str | None = None) -> AsyncIterator[Sink]:
    sink = Sink(log_path=log_path)
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            partial(trio.serve_tcp, sink.handle, port, host="127.0.0.1")
        )
        sink.port = listeners[0].socket.getsockname()[1]
        yield sink
        nursery.cancel_scope.cancel()


async def _main(port: int, log_path: str | None) -> None:
    async with serve_sink(port, log_path) as sink:
        print(f"PORT {sink.port}", flush=True)
        await trio.sleep_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--log")
    args = parser.parse_args()
    trio.run(_main, args.port, args.log)
