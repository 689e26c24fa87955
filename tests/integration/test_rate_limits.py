"""Rate limits: token buckets per client address (before authentication) and per API key.

Time is a ManualClock: a bucket refills only when the test moves the clock.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from runlater.clock import ManualClock
from runlater.config import Settings
from runlater.store.postgres import Store
from runlater.web.app import create_app
from runlater.web.ratelimit import TokenBuckets, client_key, retry_after
from tests.helpers.factories import make_org

TASK = {"url": "http://127.0.0.1:9999/x", "delay": "1h"}


def _app(store: Store, clock: ManualClock, *, per_key: int, per_ip: int) -> Any:
    settings = Settings(
        allow_private_targets=True, rate_limit_per_key=per_key, rate_limit_per_ip=per_ip
    )
    return create_app(store, settings, clock).test_client()


def _clock() -> ManualClock:
    return ManualClock(datetime(2026, 11, 29, 12, 0, tzinfo=UTC))


async def _get(client: Any, key: str, ip: str = "192.0.2.1") -> Any:
    return await client.get(
        "/api/v1/api-keys",
        headers={"Authorization": f"Bearer {key}"},
        scope_base={"client": (ip, 40000)},
    )


async def _assert_limited(response: Any, retry: str) -> None:
    assert response.status_code == 429
    assert response.headers["Retry-After"] == retry
    assert (await response.get_json())["error"]["code"] == "rate_limited"


async def test_per_key_limit_refuses_with_retry_after_until_a_token_is_back(store: Store) -> None:
    _, key = await make_org(store, "Acme")
    _, other_key = await make_org(store, "Globex")
    clock = _clock()
    client = _app(store, clock, per_key=3, per_ip=0)
    for _ in range(3):
        assert (await _get(client, key)).status_code == 200
    # 3 per minute: one token every 20 s
    await _assert_limited(await _get(client, key), "20")
    assert (await _get(client, other_key)).status_code == 200  # another key: its own bucket
    clock.advance(19.5)
    await _assert_limited(await _get(client, key), "1")  # rounded up, never 0
    clock.advance(0.5)
    assert (await _get(client, key)).status_code == 200
    await _assert_limited(await _get(client, key), "20")


async def test_per_address_limit_counts_before_authentication(store: Store) -> None:
    _, key = await make_org(store)
    clock = _clock()
    client = _app(store, clock, per_key=0, per_ip=2)
    bad = key.replace("sk_live_", "sk_live_X")[: len(key)]
    for _ in range(2):
        assert (await _get(client, bad, "198.51.100.7")).status_code == 401
    # key guessing is limited too: the third attempt is refused before any key lookup
    await _assert_limited(await _get(client, key, "198.51.100.7"), "30")
    assert (await _get(client, key, "198.51.100.8")).status_code == 200  # another address
    clock.advance(30)
    assert (await _get(client, key, "198.51.100.7")).status_code == 200


async def test_a_limited_call_acts_not_and_leaves_its_idempotency_key_free(store: Store) -> None:
    _, key = await make_org(store)
    clock = _clock()
    client = _app(store, clock, per_key=1, per_ip=0)
    headers = {"Authorization": f"Bearer {key}"}
    assert (await client.get("/api/v1/tasks", headers=headers)).status_code == 200
    limited = await client.post(
        "/api/v1/tasks", headers={**headers, "Idempotency-Key": "k1"}, json=TASK
    )
    await _assert_limited(limited, "60")
    clock.advance(60)
    created = await client.post(
        "/api/v1/tasks", headers={**headers, "Idempotency-Key": "k1"}, json=TASK
    )
    assert created.status_code == 202  # the key was not claimed by the refused call
    clock.advance(60)
    log = await (await client.get("/api/v1/audit-log", headers=headers)).get_json()
    assert [e["action"] for e in log["data"]] == ["POST /api/v1/tasks"]
    count = await store._run(lambda c: c.fetchval("select count(*) from tasks"))
    assert count == 1


async def test_zero_turns_a_limit_off(store: Store) -> None:
    _, key = await make_org(store)
    clock = _clock()
    limited = _app(store, clock, per_key=1, per_ip=1)
    assert (await _get(limited, key)).status_code == 200
    assert (await _get(limited, key)).status_code == 429
    unlimited = _app(store, clock, per_key=0, per_ip=0)
    for _ in range(30):
        assert (await _get(unlimited, key)).status_code == 200


async def test_the_public_spec_is_not_limited(store: Store) -> None:
    clock = _clock()
    client = _app(store, clock, per_key=1, per_ip=1)
    for _ in range(3):
        response = await client.get("/api/v1/openapi.json", scope_base={"client": ("::1", 1)})
        assert response.status_code == 200


async def test_default_limits_admit_a_burst_of_the_configured_size(store: Store) -> None:
    """The defaults (600 per key, 1,200 per address, per minute) admit a burst of 600 calls of
    one key at once — the 601st waits."""
    _, key = await make_org(store)
    clock = _clock()
    client = create_app(store, Settings(), clock).test_client()
    statuses = [(await _get(client, key)).status_code for _ in range(601)]
    assert statuses[:600] == [200] * 600
    assert statuses[600] == 429


# ------------------------------------------------------------------ the buckets themselves


class Seconds:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_bucket_refills_at_limit_per_60_s_up_to_its_capacity() -> None:
    now = Seconds()
    buckets = TokenBuckets(120, now)  # 2 per second, burst 120
    assert all(buckets.take("a") == 0.0 for _ in range(120))
    assert buckets.take("a") == pytest.approx(0.5)
    now.now += 1.0
    assert buckets.take("a") == 0.0 and buckets.take("a") == 0.0
    assert buckets.take("a") == pytest.approx(0.5)
    now.now += 3600  # a long pause refills to the capacity, not beyond
    assert all(buckets.take("a") == 0.0 for _ in range(120))
    assert buckets.take("a") > 0


def test_a_clock_going_backwards_adds_no_tokens() -> None:
    now = Seconds()
    buckets = TokenBuckets(60, now)
    for _ in range(60):
        buckets.take("a")
    now.now -= 500
    assert buckets.take("a") == pytest.approx(1.0)
    now.now += 1.0
    assert buckets.take("a") == 0.0


def test_idle_full_buckets_are_dropped_and_memory_is_bounded() -> None:
    now = Seconds()
    buckets = TokenBuckets(60, now, max_buckets=1000)
    for i in range(500):
        buckets.take(f"client-{i}")
    assert len(buckets) == 500
    now.now += 60  # every bucket is full again: indistinguishable from a new one
    for i in range(500):
        buckets.take(f"other-{i}")
    assert len(buckets) == 500  # each new one pushed out up to two idle ones
    for i in range(5000):
        buckets.take(f"flood-{i}")
    assert len(buckets) == 1000  # never more than max_buckets


def test_retry_after_is_whole_seconds_at_least_one() -> None:
    assert [retry_after(s) for s in (0.001, 0.5, 1.0, 1.01, 19.2)] == ["1", "1", "1", "2", "20"]


def test_an_ipv6_client_is_one_bucket_per_64() -> None:
    """Addresses of one /64 share a bucket (else walking the /64 would evict every other
    client's bucket); IPv4 and IPv4-mapped addresses stay per address."""
    assert (
        client_key("2001:db8:1:2::1") == client_key("2001:db8:1:2:ffff::9") == ("2001:db8:1:2::/64")
    )
    assert client_key("2001:db8:1:3::1") != client_key("2001:db8:1:2::1")
    assert client_key("192.0.2.7") == client_key("::ffff:192.0.2.7") == "192.0.2.7"
    assert client_key("") == ""
