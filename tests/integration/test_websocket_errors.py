"""A websocket upgrade gets the API's error handling: 404 for an unknown path, never a 5xx
(the error handlers once assumed an HTTP request and answered 500)."""

from __future__ import annotations

import logging

import pytest
import trio
from trio_websocket import ConnectionRejected, open_websocket_url

from runlater.clock import SystemClock
from runlater.config import Settings
from runlater.store.postgres import Store
from runlater.web.app import create_app
from runlater.web.server import WebServer


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/api/v1/livez", 404, "not_found"),
        ("/api/v1/live", 401, "unauthorized"),  # the live route without an API key
        ("/nope", 404, "not_found"),
        # An HTTP route: the upgrade is a GET with the wrong protocol, as routing sees it.
        ("/api/v1/tasks", 405, "method_not_allowed"),
    ],
)
async def test_a_refused_websocket_upgrade_gets_a_json_4xx(
    store: Store, path: str, status: int, code: str, caplog: pytest.LogCaptureFixture
) -> None:
    web = WebServer(create_app(store, Settings(), SystemClock()), host="127.0.0.1", port=0)
    async with trio.open_nursery() as nursery:
        [url] = await nursery.start(web.run)
        ws_url = url.replace("http://", "ws://") + path
        with caplog.at_level(logging.ERROR), pytest.raises(ConnectionRejected) as rejected:
            async with open_websocket_url(ws_url):
                pass
        nursery.cancel_scope.cancel()
    assert rejected.value.status_code == status
    assert f'"{code}"'.encode() in (rejected.value.body or b"")
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
