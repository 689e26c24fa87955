"""Fixtures of the contract tests: the app with two organizations, and its served spec."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pytest
from quart_trio import QuartTrio

from runlater.clock import ManualClock
from runlater.config import Settings
from runlater.store.postgres import Store
from runlater.web.app import create_app
from runlater.web.openapi import SPEC_PATH
from tests.contract.server import EveryNameResolver
from tests.helpers.factories import make_org

API = "/api/v1"
# Rate limits off: the contract tests send many requests with one key in a short time.
SETTINGS = Settings(allow_private_targets=True, rate_limit_per_key=0, rate_limit_per_ip=0)


@dataclass
class Reply:
    status: int
    body: Any  # parsed JSON, or None for an empty or non-JSON body
    text: str
    headers: Any


@dataclass
class Client:
    """One API key's view of the app (``key=None``: no Authorization header)."""

    app: QuartTrio
    key: str | None
    org_id: UUID | None = None

    async def call(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        data: bytes | None = None,
        query: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        """``path`` is relative to ``/api/v1`` unless it starts with it (or is ``/health`` or
        under the QStash-compatible ``/v2/``)."""
        sent = {"Authorization": f"Bearer {self.key}"} if self.key else {}
        sent.update(headers or {})
        kwargs: dict[str, Any] = {"method": method, "headers": sent, "query_string": query}
        if data is not None:
            kwargs["data"] = data
            sent.setdefault("Content-Type", "application/json")
        elif json_body is not None:
            kwargs["json"] = json_body
        url = path if path.startswith((API, "/health", "/v2/")) else API + path
        response = await self.app.test_client().open(url, **kwargs)
        text = await response.get_data(as_text=True)
        try:
            body = json.loads(text) if text else None
        except ValueError:
            body = None
        return Reply(response.status_code, body, text, response.headers)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime.now(UTC))


@pytest.fixture
def app(store: Store, clock: ManualClock) -> QuartTrio:
    return create_app(store, SETTINGS, clock, EveryNameResolver())


@pytest.fixture
async def alice(store: Store, app: QuartTrio) -> Client:
    org_id, key = await make_org(store, "Alice Corp")
    return Client(app, key, org_id)


@pytest.fixture
async def bob(store: Store, app: QuartTrio) -> Client:
    org_id, key = await make_org(store, "Bob Corp")
    return Client(app, key, org_id)


@pytest.fixture
async def spec(app: QuartTrio) -> dict[str, Any]:
    """The spec as served (publicly: no key)."""
    reply = await Client(app, None).call("GET", SPEC_PATH)
    assert reply.status == 200, reply.text
    return reply.body
