"""WebServer: serves the quart-trio app with hypercorn's trio worker inside the node's nursery.

Mailbox: none. Emits: nothing (the app talks to the store). Runs on every node.
``task_status.started()`` reports the bound URLs (port 0 picks a free one). A crash restarts
the listener socket; in-flight requests of that moment fail.
"""

from __future__ import annotations

import logging
from typing import Any

import trio
from hypercorn.config import Config
from hypercorn.trio import serve

log = logging.getLogger("runlater.web.server")


class WebServer:
    def __init__(self, app: Any, *, host: str, port: int) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.bound: list[str] = []

    def _config(self) -> Config:
        config = Config()
        host = f"[{self.host}]" if ":" in self.host else self.host
        config.bind = [f"{host}:{self.port}"]
        config.accesslog = None
        config.errorlog = logging.getLogger("hypercorn.error")
        config.keep_alive_timeout = 75
        config.graceful_timeout = 5
        return config

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        config = self._config()

        class _Started:
            def started(inner, binds: Any = None) -> None:
                self.bound = list(binds or [])
                log.info("actor=web listening urls=%s", ",".join(self.bound))
                task_status.started(self.bound)

        await serve(
            self.app,
            config,
            shutdown_trigger=trio.sleep_forever,
            task_status=_Started(),
        )
