"""What the server logs: a line per API request (with its request id, echoed to the client)
and a line per finished delivery (failures at WARNING)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from runlater.actors.worker import Worker
from runlater.clock import SystemClock
from runlater.config import Settings
from runlater.delivery.client import Deliverer
from runlater.delivery.transport import TrioTransport
from runlater.logs import fields_of
from runlater.store.postgres import Store
from runlater.web.app import create_app
from tests.helpers.factories import make_org, once_task
from tests.helpers.sink import serve_sink


def lines(caplog: pytest.LogCaptureFixture, logger: str) -> list[tuple[int, dict[str, Any]]]:
    return [(r.levelno, fields_of(r)) for r in caplog.records if r.name == logger]


async def test_every_request_is_one_access_line_with_its_request_id(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    _, key = await make_org(store)
    client = create_app(store, Settings(), SystemClock()).test_client()
    auth = {"Authorization": f"Bearer {key}"}
    with caplog.at_level(logging.INFO, logger="runlater.access"):
        kept = await client.get("/api/v1/tasks", headers={**auth, "X-Request-Id": "abc-123"})
        made = await client.get("/api/v1/tasks/not-an-id", headers=auth)
        bad_id = await client.get("/health", headers={"X-Request-Id": "has space"})
        refused = await client.get("/api/v1/tasks")
    assert kept.headers["X-Request-Id"] == "abc-123"
    assert len(made.headers["X-Request-Id"]) == 32
    assert bad_id.headers["X-Request-Id"] != "has space"
    logged = lines(caplog, "runlater.access")
    assert [(f["method"], f["path"], f["status"]) for _, f in logged] == [
        ("GET", "/api/v1/tasks", 200),
        ("GET", "/api/v1/tasks/not-an-id", 404),
        ("GET", "/health", 200),
        ("GET", "/api/v1/tasks", 401),
    ]
    ids = [kept, made, bad_id, refused]
    assert [f["request_id"] for _, f in logged] == [r.headers["X-Request-Id"] for r in ids]
    assert all(isinstance(f["ms"], float) and f["ms"] >= 0 for _, f in logged)
    assert {level for level, _ in logged} == {logging.INFO}


async def test_every_finished_delivery_is_one_line_failures_at_warning(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    org, _ = await make_org(store)
    async with serve_sink() as sink, TrioTransport(allow_private=True) as transport:
        ok = await store.insert_task(org, once_task(sink.url + "/ok"), 0)
        bad = await store.insert_task(org, once_task(sink.url + "/status/503", retry_attempts=1), 0)
        deliverer = Deliverer(transport)
        with caplog.at_level(logging.INFO, logger="runlater.delivery"):
            await Worker(store, deliverer, node="t", lease_margin_s=5).run_once(10)
    logged = {f["task"]: (level, f) for level, f in lines(caplog, "runlater.delivery")}
    level, fields = logged[str(ok["id"])]
    assert level == logging.INFO
    assert (fields["execution"], fields["attempt"]) == (str(ok["execution_id"]), 1)
    assert (fields["outcome"], fields["status_code"]) == ("success", 200)
    assert isinstance(fields["ms"], int)
    level, fields = logged[str(bad["id"])]
    assert level == logging.WARNING
    assert (fields["outcome"], fields["status_code"]) == ("failed", 503)
    assert "503" in fields["error"] and fields["retry_in_s"] > 0
