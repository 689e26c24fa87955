"""API-key lookups are cached for under a second; a revoked key stops working within 1 s on
every node; ``last_used_at`` is kept up to date at most once a minute per key."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import trio

from runlater.clock import ManualClock
from runlater.config import Settings
from runlater.store.postgres import Store
from runlater.web.app import create_app
from tests.helpers.factories import make_org
from tests.helpers.faulty import FaultyStore


def _clock() -> ManualClock:
    return ManualClock(datetime(2026, 11, 29, 12, 0, tzinfo=UTC))


def _client(store: Any, clock: ManualClock) -> Any:
    return create_app(store, Settings(), clock).test_client()


async def _status(client: Any, key: str) -> int:
    response = await client.get("/api/v1/tasks", headers={"Authorization": f"Bearer {key}"})
    return response.status_code


async def _new_key(client: Any, key: str) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/api-keys", headers={"Authorization": f"Bearer {key}"}, json={"name": "n"}
    )
    assert response.status_code == 201
    return (await response.get_json())["data"]


async def test_a_revoked_key_is_refused_within_1s_on_another_node(
    store: Store, database_url: str
) -> None:
    _, admin = await make_org(store)
    clock_a, clock_b = _clock(), _clock()
    node_a = _client(store, clock_a)
    created = await _new_key(node_a, admin)
    other_store = await Store.open(database_url, pool_size=2)
    try:
        node_b = _client(other_store, clock_b)
        for node in (node_a, node_b):
            assert await _status(node, created["key"]) == 200  # cached on both nodes now
        revoked = await node_a.delete(
            f"/api/v1/api-keys/{created['id']}", headers={"Authorization": f"Bearer {admin}"}
        )
        assert revoked.status_code == 204
        assert await _status(node_a, created["key"]) == 401  # the revoking node: at once
        # Node B trusts its lookup for less than a second of its clock, not a moment longer.
        clock_b.advance(0.999)
        assert await _status(node_b, created["key"]) == 200
        clock_b.advance(0.001)
        assert await _status(node_b, created["key"]) == 401
        assert await _status(node_b, admin) == 200
    finally:
        with trio.CancelScope(shield=True):
            await other_store.close()


async def test_lookups_are_cached_for_under_a_second(store: Store) -> None:
    _, key = await make_org(store)
    clock = _clock()
    counted = FaultyStore(store)
    client = _client(counted, clock)
    for _ in range(20):
        assert await _status(client, key) == 200
    assert counted.calls["authenticate_api_key"] == 1
    clock.advance(0.5)
    assert await _status(client, key) == 200
    assert counted.calls["authenticate_api_key"] == 1
    clock.advance(0.5)
    assert await _status(client, key) == 200
    assert counted.calls["authenticate_api_key"] == 2
    clock.advance(-5)  # a clock that went backwards: the entry is not trusted
    assert await _status(client, key) == 200
    assert counted.calls["authenticate_api_key"] == 3
    # a wrong secret for a cached key id is refused without a lookup
    wrong = key[:-1] + ("a" if key[-1] != "a" else "b")
    assert await _status(client, wrong) == 401
    assert counted.calls["authenticate_api_key"] == 3


async def _last_used(store: Store, key: str) -> datetime | None:
    key_id = key.split(".")[0]
    return await store._run(
        lambda c: c.fetchval("select last_used_at from api_keys where key_id = $1", key_id)
    )


async def _age_last_used(store: Store, key: str, seconds: float) -> datetime:
    key_id = key.split(".")[0]
    return await store._run(
        lambda c: c.fetchval(
            "update api_keys set last_used_at = now() - make_interval(secs => $2)"
            " where key_id = $1 returning last_used_at",
            key_id,
            seconds,
        )
    )


async def test_last_used_at_is_marked_at_most_once_a_minute(store: Store) -> None:
    _, key = await make_org(store)
    clock = _clock()
    client = _client(store, clock)
    assert await _last_used(store, key) is None
    before = await store._run(lambda c: c.fetchval("select now()"))
    assert await _status(client, key) == 200
    first = await _last_used(store, key)
    assert first is not None and first >= before

    # Used every second for a while (each a cache miss, so each a lookup): no new write.
    recent = await _age_last_used(store, key, 30)
    for _ in range(5):
        clock.advance(1)
        assert await _status(client, key) == 200
    assert await _last_used(store, key) == recent

    # Older than a minute: the next lookup marks it again.
    stale = await _age_last_used(store, key, 61)
    clock.advance(1)
    assert await _status(client, key) == 200
    marked = await _last_used(store, key)
    assert marked is not None and marked > stale + timedelta(seconds=60)


async def test_last_used_at_is_not_marked_by_a_wrong_secret_or_a_revoked_key(
    store: Store,
) -> None:
    _, admin = await make_org(store)
    clock = _clock()
    client = _client(store, clock)
    created = await _new_key(client, admin)
    wrong = created["key"][:-1] + ("a" if created["key"][-1] != "a" else "b")
    assert await _status(client, wrong) == 401
    assert await _last_used(store, created["key"]) is None
    revoked = await client.delete(
        f"/api/v1/api-keys/{created['id']}", headers={"Authorization": f"Bearer {admin}"}
    )
    assert revoked.status_code == 204
    assert await _status(client, created["key"]) == 401
    assert await _last_used(store, created["key"]) is None
