"""``/health`` and ``/health/ready``, and the API while the database is unreachable.

Requests go through quart's test client into the real app, on a real Postgres database (a
fresh clone per test). Deliveries are real HTTP requests to a local sink."""

from __future__ import annotations

from typing import Any

import pytest
from quart_trio import QuartTrio

from tests.helpers.api import (
    TARGET,
    Api,
    assert_error,
    well_formed_unknown_key,
)

# ----------------------------------------------------------------------------------- /health


async def test_health_is_liveness_and_reports_the_last_readiness_answer(app: QuartTrio) -> None:
    api = Api(app, None)
    assert (await api.get("/health")).body == {"status": "ok", "database": "unknown"}
    ready = await api.get("/health/ready")
    assert ready.status == 200
    assert ready.body == {"status": "ok", "database": "connected"}
    reply = await api.get("/health")
    assert reply.status == 200
    assert reply.body == {"status": "ok", "database": "connected"}


async def test_health_when_the_database_is_unreachable(dead_app: QuartTrio) -> None:
    """Liveness stays 200 (the process is fine: restarting it would not bring the database
    back); readiness answers 503, and liveness then reports what readiness found."""
    api = Api(dead_app, None)
    ready = await api.get("/health/ready")
    assert ready.status == 503
    assert ready.body == {"status": "error", "database": "unreachable"}
    assert ready.headers["Retry-After"] == "5"
    reply = await api.get("/health")
    assert reply.status == 200
    assert reply.body == {"status": "ok", "database": "unreachable"}


@pytest.mark.parametrize(
    ("method", "path", "payload"),
    [
        ("GET", "/tasks", None),
        ("POST", "/tasks", {"url": TARGET}),
        ("GET", "/tasks/0190f1c2-7a4b-7c3d-9e8f-1a2b3c4d5e6f", None),
    ],
)
async def test_api_answers_unavailable_when_the_database_is_unreachable(
    dead_app: QuartTrio, method: str, path: str, payload: Any
) -> None:
    # Authentication itself needs the database: it must be 503, never 500 or 401.
    reply = await Api(dead_app, well_formed_unknown_key()).call(method, path, json=payload)
    assert_error(reply, 503, "unavailable")
    assert int(reply.headers["Retry-After"]) > 0
