"""Websocket clients of ``/api/v1/live`` in one process, for ``bench.live``.

``python -m bench.live_clients --url ws://127.0.0.1:P1/api/v1/live,ws://...:P2/... --key K
--clients 50 [--types execution.finished] [--record FILE] [--reconnect] [--max-seconds S]``

Client *i* connects to the *i*-th URL round-robin with ``Authorization: Bearer K`` (never the
key in the URL) and waits for its hello frame. Once every client has said hello or failed, one
line ``READY {"connected": n, "failed": m}`` goes to stdout. Then each client reads frames
until SIGUSR1 or SIGTERM (or ``--max-seconds``), noting the time each frame was handed to it
(``time.time()`` right after ``get_message()`` returns: the wall clock Postgres' ``now()``
uses too). Frames are kept raw while reading and parsed afterwards, so the reading loop does
as little as it can.

- ``--record FILE``: every ``execution.finished`` frame as ``[received_at, execution_id, at]``
  per client, written to FILE as JSON at the end (large: 50 clients x 200/s x 30 s = 300,000
  rows);
- ``--reconnect``: a client closed by the server (1013 after an overflow, or anything else)
  connects again, as the contract asks of a client that fell behind, with the dashboard
  pages' backoff (``static/live.js``: 0.5 s doubling to 8 s, back to 0.5 s after a connection
  that lasted 10 s); without it the client stays closed and its close is reported.

The last stdout line is one JSON object: per client its node, frames by type, overflows,
reconnects and close codes, plus totals and this process's CPU seconds.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import resource
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import trio
from trio_websocket import ConnectionClosed, HandshakeError, open_websocket_url

CONNECT_AT_ONCE = 25  # handshakes in flight (the server's listen backlog is 100)
TYPE_PREFIX = '{"type":"'  # frames are json.dumps(..., separators=(",", ":")), "type" first


# The dashboard pages' reconnect policy (runlater/web/pages/static/live.js).
RECONNECT_FIRST_S = 0.5
RECONNECT_MAX_S = 8.0
RECONNECT_RESET_S = 10.0


def log(msg: str) -> None:
    print(f"[live_clients {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


@dataclass
class Client:
    index: int
    url: str
    node: str | None = None
    hello: bool = False
    failed: str | None = None
    frames: list[tuple[float, str | bytes]] = field(default_factory=list)
    by_type: dict[str, int] = field(default_factory=dict)
    overflows: int = 0
    reconnects: int = 0
    closes: dict[str, int] = field(default_factory=dict)
    closed: bool = False


def frame_type(msg: str | bytes) -> str:
    if isinstance(msg, str) and msg.startswith(TYPE_PREFIX):
        return msg[len(TYPE_PREFIX) : msg.index('"', len(TYPE_PREFIX))]
    found: Any = json.loads(msg).get("type")  # the hello frame (default separators)
    return str(found)


async def run_client(
    client: Client,
    headers: list[tuple[bytes, bytes]],
    *,
    record: bool,
    reconnect: bool,
    connect_limit: trio.Semaphore,
    connected: trio.Event,
    on_ready: Callable[[], None],
) -> None:
    """One client: connect, hello, read until cancelled; after a close, connect again when
    ``reconnect`` (a first connection that fails is reported, not retried)."""
    first = True
    delay = RECONNECT_FIRST_S
    while True:
        outcome: str | None = None
        opened_at: float | None = None
        try:
            async with contextlib.AsyncExitStack() as stack:
                async with connect_limit:
                    ws = await stack.enter_async_context(
                        open_websocket_url(
                            client.url,
                            extra_headers=headers,
                            connect_timeout=30,
                            disconnect_timeout=2,
                        )
                    )
                    with trio.fail_after(30):
                        hello = json.loads(await ws.get_message())
                if hello.get("type") != "hello":
                    raise RuntimeError(f"first frame is not hello: {hello!r}")
                client.node = hello.get("node")
                if first:
                    first = False
                    client.hello = True
                    on_ready()
                await connected.wait()  # every client answered: the run starts
                opened_at = time.monotonic()
                frames, by_type = client.frames, client.by_type
                while True:
                    msg = await ws.get_message()
                    received = time.time()
                    if record:
                        frames.append((received, msg))
                    else:
                        kind = frame_type(msg)
                        by_type[kind] = by_type.get(kind, 0) + 1
        except ConnectionClosed as closed:
            code = closed.reason.code if closed.reason is not None else None
            outcome = str(code)
            if code == 1013:
                client.overflows += 1
        except (HandshakeError, OSError, RuntimeError, ValueError, trio.TooSlowError) as exc:
            outcome = f"{type(exc).__name__}: {exc}"[:300]
        if first:  # never said hello: a failed client
            client.failed = outcome
            on_ready()
            return
        client.closes[outcome or "?"] = client.closes.get(outcome or "?", 0) + 1
        if not reconnect:
            client.closed = True
            return
        client.reconnects += 1
        if opened_at is not None and time.monotonic() - opened_at >= RECONNECT_RESET_S:
            delay = RECONNECT_FIRST_S
        await trio.sleep(delay)
        delay = min(delay * 2, RECONNECT_MAX_S)


def parse_recorded(client: Client) -> tuple[list[list[Any]], dict[str, int]]:
    rows: list[list[Any]] = []
    by_type: dict[str, int] = {}
    for received, msg in client.frames:
        found = json.loads(msg)
        kind = found.get("type")
        by_type[kind] = by_type.get(kind, 0) + 1
        if kind == "execution.finished":
            rows.append([received, found["data"]["execution_id"], found["at"]])
    return rows, by_type


async def amain(args: argparse.Namespace) -> list[Client]:
    urls = [u for u in args.url.split(",") if u]
    if args.types:
        urls = [f"{u}?types={args.types}" for u in urls]
    headers = [(b"Authorization", f"Bearer {args.key}".encode())]
    clients = [Client(i, urls[i % len(urls)]) for i in range(args.clients)]
    limit = trio.Semaphore(CONNECT_AT_ONCE)
    connected = trio.Event()
    answered = 0
    started = time.monotonic()

    def on_ready() -> None:
        nonlocal answered
        answered += 1
        if answered == len(clients):
            ok = sum(c.hello for c in clients)
            took = time.monotonic() - started
            log(f"{ok} of {len(clients)} connected in {took:.1f} s")
            print("READY " + json.dumps({"connected": ok, "failed": len(clients) - ok}), flush=True)
            connected.set()

    with trio.move_on_after(args.max_seconds):
        async with trio.open_nursery() as nursery:

            async def stop_on_signal() -> None:
                with trio.open_signal_receiver(signal.SIGUSR1, signal.SIGTERM) as signals:
                    async for signum in signals:
                        log(f"signal {signum}: stopping")
                        nursery.cancel_scope.cancel()
                        return

            nursery.start_soon(stop_on_signal)
            for client in clients:
                nursery.start_soon(
                    functools.partial(
                        run_client,
                        client,
                        headers,
                        record=args.record is not None,
                        reconnect=args.reconnect,
                        connect_limit=limit,
                        connected=connected,
                        on_ready=on_ready,
                    )
                )
    return clients


def report(clients: list[Client], record: str | None) -> dict[str, Any]:
    """The summary (stdout's last line); with ``record``, the frames to that file."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    per_client = []
    recorded = []
    frames = 0
    for c in clients:
        by_type = c.by_type
        if record is not None:
            rows, by_type = parse_recorded(c)
            recorded.append({"index": c.index, "url": c.url, "node": c.node, "finished": rows})
        frames += sum(by_type.values())
        per_client.append(
            {
                "index": c.index,
                "url": c.url,
                "node": c.node,
                "hello": c.hello,
                "failed": c.failed,
                "by_type": by_type,
                "overflows": c.overflows,
                "reconnects": c.reconnects,
                "closes": c.closes,
                "closed_by_server": c.closed,
            }
        )
    if record is not None:
        with open(record, "w", encoding="utf-8") as fh:
            json.dump(recorded, fh)
    return {
        "clients": per_client,
        "connected": sum(c.hello for c in clients),
        "failed": sum(c.failed is not None for c in clients),
        "frames": frames,
        "overflows": sum(c.overflows for c in clients),
        "reconnects": sum(c.reconnects for c in clients),
        # CPU of the whole process, connecting and parsing the recorded frames included.
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
        "max_rss_mib": round(usage.ru_maxrss / 1024, 1),
        "record": record,
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        prog="python -m bench.live_clients", description=__doc__.splitlines()[0]
    )
    p.add_argument("--url", required=True, help="comma-separated ws:// URLs of /api/v1/live")
    p.add_argument("--key", required=True, help="API key (sent as Authorization: Bearer)")
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--types", default="", help="?types= (default: every type)")
    p.add_argument("--record", help="write every execution.finished frame to this JSON file")
    p.add_argument("--reconnect", action="store_true", help="connect again after a close")
    p.add_argument("--max-seconds", type=float, default=900.0, help="stop after this anyway")
    args = p.parse_args(argv)
    clients = trio.run(amain, args)
    print(json.dumps(report(clients, args.record)), flush=True)


if __name__ == "__main__":
    main()
