"""Closed-loop HTTP/1.1 load on one endpoint: as many requests as the server answers.

``python -m bench.api_load --url URL [--key KEY] --connections C --duration S --warmup W``
prints one JSON line (counts, statuses, latencies in ms, this process's CPU). Each of the C
keep-alive connections sends its next request as soon as the previous response is complete
(no pipelining). Requests and responses are handled as raw bytes on asyncio protocols (no
HTTP library): the request bytes are built once per connection, the response is framed by its
``Content-Length`` — about 20 µs of client CPU per request, so one client process drives
several thousand requests/s and the server, not the client, is what is measured. The server
closing a connection (hypercorn does after ``keep_alive_max_requests``) is answered by
reconnecting; a request lost that way is counted under ``errors``.

Only the window after the warm-up counts: responses completed in it (``ok``/``statuses``) and
the latency of each request sent in it. ``--idempotency`` adds a unique ``Idempotency-Key``
per request (the replay-safe path of the API).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import resource
import time
from urllib.parse import urlsplit

DEFAULT_BODY = '{"url": "http://127.0.0.1:9999/bench-api", "delay": "1d", "retry_attempts": 0}'


def _content_length(head: bytes) -> int:
    at = head.find(b"content-length:")
    if at < 0:
        return 0
    end = head.find(b"\r\n", at)
    return int(head[at + 15 : end if end >= 0 else len(head)])


class Load:
    """Shared counters of one process's connections."""

    def __init__(self, start: float, stop: float) -> None:
        self.start = start
        self.stop = stop
        self.statuses: dict[int, int] = {}
        self.errors: dict[str, int] = {}
        self.latencies: list[float] = []
        self.sample_body: str | None = None
        self.keys = itertools.count()

    def error(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1


class Connection(asyncio.Protocol):
    def __init__(self, load: Load, head: bytes, body: bytes, idempotency: bool) -> None:
        self.load = load
        self.head = head
        self.body = body
        self.idempotency = idempotency
        self.buf = bytearray()
        self.sent_at = 0.0
        self.transport: asyncio.Transport | None = None
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.send()

    def send(self) -> None:
        assert self.transport is not None
        if time.monotonic() >= self.load.stop:
            self.transport.close()
            return
        head = self.head
        if self.idempotency:
            head += b"idempotency-key: %d-%d\r\n" % (os.getpid(), next(self.load.keys))
        self.sent_at = time.monotonic()
        self.transport.write(head + b"\r\n" + self.body)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.buf[:end]).lower()
        length = _content_length(head)
        if len(self.buf) < end + 4 + length:
            return
        body = bytes(self.buf[end + 4 : end + 4 + length])
        del self.buf[: end + 4 + length]
        done = time.monotonic()
        status = int(head[9:12])
        load = self.load
        if load.start <= self.sent_at:
            load.latencies.append(done - self.sent_at)
        if load.start <= done < load.stop:
            load.statuses[status] = load.statuses.get(status, 0) + 1
            if status >= 300 and load.sample_body is None:
                load.sample_body = body[:300].decode(errors="replace")
        if b"connection: close" in head:
            self.transport.close()  # type: ignore[union-attr]
            return
        self.send()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.buf or (exc is not None and time.monotonic() < self.load.stop):
            self.load.error(type(exc).__name__ if exc else "closed mid-response")
        if not self.closed.done():
            self.closed.set_result(None)


async def run(args: argparse.Namespace) -> dict:
    url = urlsplit(args.url)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    body = args.body.encode()
    # --paths: connection i posts to paths[i % len(paths)] (e.g. one heartbeat monitor each).
    paths = args.paths.split(",") if args.paths else [url.path or "/"]
    heads = []
    for path in paths:
        head = (
            f"POST {path} HTTP/1.1\r\nhost: {host}:{port}\r\n"
            f"content-type: application/json\r\ncontent-length: {len(body)}\r\n"
        ).encode()
        if args.key:
            head += f"authorization: Bearer {args.key}\r\n".encode()
        heads.append(head)
    now = time.monotonic()
    load = Load(now + args.warmup, now + args.warmup + args.duration)
    loop = asyncio.get_running_loop()
    reconnects = 0

    async def keep_one(index: int) -> None:
        nonlocal reconnects
        head = heads[index % len(heads)]
        while time.monotonic() < load.stop:
            try:
                _, proto = await loop.create_connection(
                    lambda: Connection(load, head, body, args.idempotency), host, port
                )
            except OSError as exc:
                load.error(type(exc).__name__)
                await asyncio.sleep(0.05)
                continue
            await proto.closed
            reconnects += 1

    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    await asyncio.gather(*(keep_one(i + args.offset) for i in range(args.connections)))
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "pid": os.getpid(),
        "connections": args.connections,
        "duration_s": args.duration,
        "statuses": {str(k): v for k, v in sorted(load.statuses.items())},
        "ok": sum(v for k, v in load.statuses.items() if 200 <= k < 300),
        "errors": load.errors,
        "sample_error_body": load.sample_body,
        "reconnects": reconnects - args.connections,
        "latencies_ms": [round(v * 1000, 3) for v in load.latencies],
        "client_cpu_s": (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True, help="http://127.0.0.1:PORT/path (POST)")
    parser.add_argument("--key", default="", help="API key (sent as a Bearer token)")
    parser.add_argument("--body", default=DEFAULT_BODY, help="JSON request body")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--idempotency", action="store_true")
    parser.add_argument("--paths", default="", help="comma-separated paths, one per connection")
    parser.add_argument("--offset", type=int, default=0, help="this process's first connection")
    args = parser.parse_args()
    if not args.url.startswith("http://127.0.0.1:"):
        raise SystemExit("bench.api_load only targets http://127.0.0.1")
    print(json.dumps(asyncio.run(run(args))), flush=True)


if __name__ == "__main__":
    main()
