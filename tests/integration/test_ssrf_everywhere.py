"""The SSRF matrix of tests/unit/test_ssrf.py, end to end: every blocked URL is refused at the
API (422 ``url_not_allowed``) and, stored anyway, fails its delivery at connect time with no
connection made; the allowed ones pass both."""

from __future__ import annotations

from typing import Any

import pytest

from runlater.clock import SystemClock
from runlater.config import Settings
from runlater.delivery.client import Deliverer
from runlater.delivery.resolver import StaticResolver
from runlater.delivery.transport import TrioTransport
from runlater.store.postgres import Store
from runlater.web.app import create_app
from tests.helpers.factories import claimed_execution, make_org
from tests.unit.test_ssrf import ANSWERS, CASES

# Cases that are about the URL's shape, not where it points: refused at the API by
# validation or the guard; a delivery would never reach a connect step for them.
SHAPE_ONLY = (
    "is not allowed",
    "Port out of range",
    "only http",
    "credentials",
    "no host",
    "invalid URL",
    "invalid",
)
CONNECT_CASES = [c for c in CASES if c.values[2] and c.values[3] not in SHAPE_ONLY]


@pytest.mark.parametrize(("url", "allow_private", "blocked", "why"), CASES)
async def test_api_refuses_every_blocked_url(
    store: Store, url: str, allow_private: bool, blocked: bool, why: str
) -> None:
    _, key = await make_org(store)
    app = create_app(
        store,
        Settings(allow_private_targets=allow_private),
        SystemClock(),
        resolver=StaticResolver(ANSWERS),
    )
    response = await app.test_client().post(
        "/api/v1/tasks",
        json={"url": url, "delay": "1h"},
        headers={"Authorization": f"Bearer {key}"},
    )
    body = await response.get_json()
    if not blocked:
        assert response.status_code == 202, body
        return
    assert response.status_code == 422, body
    assert body["error"]["code"] in ("url_not_allowed", "validation_error")
    if body["error"]["code"] == "url_not_allowed":
        assert why in " ".join(body["error"]["details"]["url"])


@pytest.mark.parametrize(("url", "allow_private", "blocked", "why"), CONNECT_CASES)
async def test_delivery_to_every_blocked_address_fails_at_connect(
    url: str, allow_private: bool, blocked: bool, why: str
) -> None:
    """No pre-check: the transport's connect step alone must refuse (DNS answers come from the
    same table, so names resolving to bad addresses are covered too)."""
    async with TrioTransport(
        allow_private=allow_private, resolver=StaticResolver(ANSWERS)
    ) as transport:
        deliverer = Deliverer(transport)
        attempt: Any = await deliverer.deliver(claimed_execution(url))
        assert transport.stats.opened == 0
    assert attempt.status == "failed"
    if attempt.error.startswith("InvalidURL"):
        # httpx itself refuses some spellings (octal dotted, full-width digits) before any
        # connect step; the unit matrix shows the guard would refuse them as well.
        assert url in {"http://0177.0.0.1/", "http://\uff11\uff12\uff17.\uff10.\uff10.\uff11/"}
    else:
        assert why in attempt.error, attempt.error
