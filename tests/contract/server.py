"""The app on a real hypercorn server in a background thread, for clients that are synchronous
(schemathesis). The thread runs its own ``trio.run`` with the trio-asyncio loop, the store and
``WebServer``; nothing else: no scheduler, no workers, so no task it accepts is ever delivered.
"""

from __future__ import annotations

import ipaddress
import threading
from collections import Counter
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import trio

from runlater import apikeys
from runlater.clock import SystemClock
from runlater.config import Settings
from runlater.delivery.resolver import IPAddress
from runlater.store import bridge
from runlater.store.postgres import Store
from runlater.web.app import create_app
from runlater.web.server import WebServer
from tests.helpers.factories import make_org

START_TIMEOUT_S = 60


class EveryNameResolver:
    """Answers every host name with one address and never asks DNS, so URL checks of generated
    host names cost no lookup. (Literal IPs never reach a resolver: the SSRF guard checks them.)
    """

    def __init__(self, address: str = "127.0.0.1") -> None:
        self.address = ipaddress.ip_address(address)

    async def resolve(self, host: str, port: int) -> list[IPAddress]:
        await trio.lowlevel.checkpoint()
        return [self.address]


class CountingApp:
    """ASGI middleware counting the responses the server sends, by status: what the server did,
    whatever the client reports."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.statuses: Counter[int] = Counter()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def counted(message: Any) -> None:
            if message["type"] == "http.response.start":
                self.statuses[message["status"]] += 1
            await send(message)

        await self.app(scope, receive, counted)


@dataclass(frozen=True)
class Running:
    url: str
    key: str  # of a pro organization
    key_row_id: str  # the key's id, as ``/api-keys`` shows it
    responses: Counter[int]  # statuses sent so far


class ServerThread:
    """``with ServerThread(dsn, settings) as running:`` serves until the block ends."""

    def __init__(self, database_url: str, settings: Settings, resolver: Any = None) -> None:
        self.database_url = database_url
        self.settings = settings
        self.resolver = resolver or EveryNameResolver()
        self._ready = threading.Event()
        self._running: Running | None = None
        self._error: BaseException | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._stop: trio.Event | None = None
        self._thread = threading.Thread(target=self._main, name="runlater-test-server")

    def __enter__(self) -> Running:
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT_S):
            raise AssertionError(f"server did not start within {START_TIMEOUT_S} s")
        if self._error is not None or self._running is None:
            raise AssertionError("server failed to start") from self._error
        return self._running

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._token is not None and self._stop is not None:
            trio.from_thread.run_sync(self._stop.set, trio_token=self._token)
        self._thread.join(START_TIMEOUT_S)

    def _main(self) -> None:
        try:
            trio.run(self._serve)
        except BaseException as exc:  # reported to the test thread by __enter__
            self._error = exc
        finally:
            self._ready.set()

    async def _serve(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        self._stop = trio.Event()
        async with bridge.open_loop():
            store = await Store.open(self.database_url, pool_size=4)
            try:
                _, key = await make_org(store, "Fuzz", "pro")
                key_id, secret = key.split(".")
                owner = await store.authenticate_api_key(key_id, apikeys.hash_secret(secret))
                app = CountingApp(create_app(store, self.settings, SystemClock(), self.resolver))
                async with trio.open_nursery() as nursery:
                    server = WebServer(app, host="127.0.0.1", port=0)
                    bound = await nursery.start(server.run)
                    self._running = Running(bound[0], key, str(owner.key_row_id), app.statuses)
                    self._ready.set()
                    await self._stop.wait()
                    nursery.cancel_scope.cancel()
            finally:
                with trio.CancelScope(shield=True):
                    await store.close()
