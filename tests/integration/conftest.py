"""Fixtures of the API tests: an app on the test's database with a manual clock, and an API key
of two organizations (Acme and Globex). A module may define its own of the same name."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from quart_trio import QuartTrio

from runlater.clock import ManualClock
from runlater.store.postgres import Store
from tests.helpers.api import UNREACHABLE_DSN, Api, make_app
from tests.helpers.factories import make_org


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime.now(UTC))


@pytest.fixture
def app(store: Store, clock: ManualClock) -> QuartTrio:
    return make_app(store, clock)


@pytest.fixture
async def api(store: Store, app: QuartTrio) -> Api:
    _, key = await make_org(store, "Acme")
    return Api(app, key)


@pytest.fixture
async def other(store: Store, app: QuartTrio) -> Api:
    """A second organization on the same app."""
    _, key = await make_org(store, "Globex")
    return Api(app, key)


@pytest.fixture
async def dead_app(aio_loop: object, clock: ManualClock) -> AsyncIterator[QuartTrio]:
    """An app whose database cannot be reached (nothing listens on port 1)."""
    store = await Store.open(UNREACHABLE_DSN)
    try:
        yield make_app(store, clock)
    finally:
        await store.close()
