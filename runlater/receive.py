"""``runlater receive``: a local target that prints what it gets and checks its signatures.

For trying Runlater on one machine, offline: point a task at it and watch the delivery arrive.
Each request is printed (method, path, headers, body) with whether its signatures verify
against ``--secret`` (the organization's ``webhook_secret``), and answered with ``--status``.
A bare ASGI app on hypercorn's trio worker, like the server itself.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TextIO

import trio
from hypercorn.config import Config
from hypercorn.trio import serve

from runlater.delivery.signing import PREFIX, verify_signatures

MAX_PRINTED_BODY = 64 * 1024
Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class Receiver:
    """The ASGI app: prints each request to ``out`` and answers ``status``."""

    def __init__(self, *, secret: str | None, status: int, out: TextIO | None = None) -> None:
        self.secret = secret
        self.status = status
        self.out = out or sys.stdout
        self.received = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                kind = (await receive())["type"]
                if kind == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif kind == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        body = bytearray()
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.received += 1
        self.print_request(scope, bytes(body))
        answer = f"received by runlater receive ({self.status})\n".encode()
        await send(
            {
                "type": "http.response.start",
                "status": self.status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8")],
            }
        )
        await send({"type": "http.response.body", "body": answer})

    def print_request(self, scope: Scope, body: bytes) -> None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        path = scope["path"] + (
            f"?{scope['query_string'].decode()}" if scope["query_string"] else ""
        )
        at = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        lines = [f"--- {scope['method']} {path}  ({at})"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        text = body[:MAX_PRINTED_BODY].decode("utf-8", errors="replace")
        cut = (
            f"\n[... {len(body) - MAX_PRINTED_BODY} more bytes]"
            if len(body) > MAX_PRINTED_BODY
            else ""
        )
        lines += ["", text + cut if body else "(no body)", self.signature_line(headers, body)]
        print("\n".join(lines), file=self.out, flush=True)

    def signature_line(self, headers: dict[str, str], body: bytes) -> str:
        if not any(h in headers for h in ("webhook-signature", "x-runlater-signature")):
            return "signatures: none in this request"
        if self.secret is None:
            return "signatures: not checked (start with --secret whsec_... to check them)"
        found = verify_signatures(self.secret, headers, body, int(time.time()))
        return "signatures: " + ", ".join(f"{name} {verdict}" for name, verdict in found.items())


def check_secret(secret: str | None) -> str | None:
    if secret is not None and not secret.startswith(PREFIX):
        raise ValueError(f"--secret must be an organization's webhook secret ({PREFIX}...)")
    return secret


async def receive(
    host: str,
    port: int,
    *,
    secret: str | None,
    status: int,
    task_status: Any = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve until cancelled; ``task_status.started(url)`` once listening."""
    app = Receiver(secret=secret, status=status)
    config = Config()
    config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    config.accesslog = None
    config.errorlog = None

    class _Started:
        def started(self, binds: Any = None) -> None:
            url = next(iter(binds or []))
            print(f"receiving on {url} (answers {status}); Ctrl+C stops", flush=True)
            task_status.started(url)

    await serve(app, config, shutdown_trigger=trio.sleep_forever, task_status=_Started())  # type: ignore[arg-type]
