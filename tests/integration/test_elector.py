"""Elector against real Postgres: one leader at a time, renewal, takeover, release, outages.

The lease row's expiry comes from the database clock; tests expire it with SQL instead of
waiting. Only the outage tests wait on real time (the elector's local deadline is trio time),
with a tiny lease and a polling deadline of a few seconds.
"""

from __future__ import annotations

from typing import Any

import trio
import trio_asyncio

from runlater.actors.elector import LEASE_NAME, Elector, ElectorResult
from runlater.errors import StoreUnavailable
from runlater.store.postgres import Store
from tests.helpers.db import raw_connection
from tests.helpers.faulty import FaultyStore

POLL_S = 0.02


async def lease_row(dsn: str) -> dict[str, Any] | None:
    async with raw_connection(dsn) as conn:
        row = await trio_asyncio.aio_as_trio(conn.fetchrow)(
            "select holder, expires_at, expires_at > now() as valid from leader_leases "
            "where name = $1",
            LEASE_NAME,
        )
    return dict(row) if row is not None else None


async def expire_lease(dsn: str) -> None:
    async with raw_connection(dsn) as conn:
        done = await trio_asyncio.aio_as_trio(conn.execute)(
            "update leader_leases set expires_at = now() - interval '1 s' where name = $1",
            LEASE_NAME,
        )
    assert done == "UPDATE 1"


def elector(store: Any, node: str, *, lease_s: float = 10, renew_s: float = 3) -> Elector:
    return Elector(store, node=node, lease_s=lease_s, renew_s=renew_s)


async def both(a: Elector, b: Elector) -> tuple[ElectorResult, ElectorResult]:
    """One election round on both nodes, concurrently."""
    results: dict[str, ElectorResult] = {}

    async def one(e: Elector) -> None:
        results[e.node] = await e.run_once()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(one, a)
        nursery.start_soon(one, b)
    return results[a.node], results[b.node]


class SlowReplies:
    """The real store, but the lease reply reaches the node ``delay_s`` after the database
    answered (a slow network or an overloaded node)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.delay_s = 0.0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def acquire_leader_lease(self, name: str, holder: str, ttl_s: float) -> float | None:
        result = await self._store.acquire_leader_lease(name, holder, ttl_s)
        await trio.sleep(self.delay_s)
        return result


# ------------------------------------------------------------------------------- tests


async def test_exactly_one_leader_and_the_leader_renews(store: Store, database_url: str) -> None:
    """Two nodes electing at the same time: exactly one wins; on later rounds the winner
    renews (its lease's expiry moves forward) and the other never becomes leader while the
    lease is live."""
    a, b = elector(store, "node-a"), elector(store, "node-b")
    first = await both(a, b)
    assert sorted(r.is_leader for r in first) == [False, True]
    assert all(r.changed == r.is_leader for r in first)
    leader, follower = (a, b) if a.is_leader else (b, a)
    lease = await lease_row(database_url)
    assert lease is not None and lease["holder"] == leader.node and lease["valid"]

    for _ in range(5):
        ra, rb = await both(a, b)
        assert (ra.is_leader, rb.is_leader) == (a is leader, b is leader)
        assert not ra.changed and not rb.changed
    renewed = await lease_row(database_url)
    assert renewed is not None and renewed["holder"] == leader.node
    assert renewed["expires_at"] > lease["expires_at"]
    assert not follower.is_leader


async def test_other_node_takes_over_when_the_lease_expires(
    store: Store, database_url: str
) -> None:
    """When the leader stops renewing and its lease row expires, the other node takes over on
    its next round, and the old leader learns on its own next round that it lost."""
    a, b = elector(store, "node-a"), elector(store, "node-b")
    assert (await a.run_once()).is_leader
    assert not (await b.run_once()).is_leader  # lease still live: no takeover

    await expire_lease(database_url)
    taken = await b.run_once()
    assert taken == ElectorResult(is_leader=True, changed=True)
    assert (await lease_row(database_url) or {})["holder"] == "node-b"
    lost = await a.run_once()
    assert lost == ElectorResult(is_leader=False, changed=True)
    assert (await b.run_once()) == ElectorResult(is_leader=True, changed=False)


async def test_release_on_shutdown_hands_over_immediately(store: Store, database_url: str) -> None:
    """A leader that shuts down (its ``run`` is cancelled) deletes its lease row, so another
    node becomes leader on its very next round instead of waiting out the 10 s lease. A node
    releasing a lease it does not hold deletes nothing."""
    a = elector(store, "node-a")
    b = elector(store, "node-b")
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(a.run)
            while not a.is_leader:
                await trio.sleep(0.01)
            assert not (await b.run_once()).is_leader
            await store.release_leader_lease(LEASE_NAME, "node-b")  # not b's to release
            assert (await lease_row(database_url) or {}).get("holder") == "node-a"
            nursery.cancel_scope.cancel()
    assert not a.is_leader
    assert await lease_row(database_url) is None
    assert await b.run_once() == ElectorResult(is_leader=True, changed=True)


async def test_leader_steps_down_during_outage_before_its_lease_can_expire(
    store: Store, database_url: str
) -> None:
    """While the database is unreachable the leader keeps leading only until its local
    deadline (the lease it last saw, minus a safety margin), then steps down — before that
    lease has expired in the database, so no other node can be leader at the same time. Once
    the lease expires, the other node takes over."""
    faulty = FaultyStore(store)
    a = elector(faulty, "node-a", lease_s=1.5, renew_s=0.1)
    b = elector(store, "node-b", lease_s=1.5, renew_s=0.1)
    assert (await a.run_once()).is_leader
    faulty.fail("acquire_leader_lease", lambda n: True, StoreUnavailable("database is down"))
    assert await a.run_once() == ElectorResult(is_leader=True, changed=False)  # lease holds

    stepped_down_at = None
    with trio.fail_after(5):
        while True:
            ra = await a.run_once()
            if not ra.is_leader and stepped_down_at is None:
                stepped_down_at = trio.current_time()
                assert ra.changed
                lease = await lease_row(database_url)
                assert lease is not None and lease["holder"] == "node-a"
                assert lease["valid"], "stepped down only after the lease had expired"
            rb = await b.run_once()
            assert not (ra.is_leader and rb.is_leader), "two leaders at once"
            if rb.is_leader:
                break
            await trio.sleep(POLL_S)
    assert stepped_down_at is not None
    assert not a.is_leader


async def test_slow_renewal_reply_never_yields_two_leaders(store: Store, database_url: str) -> None:
    """The local deadline counts from when the renewal was *sent*, not from when its reply
    arrived: a reply delayed by 1.5 s on a 2 s lease must not let the leader believe in its
    lease after the database let it expire — another node taking over then would make two
    leaders at once."""
    slow = SlowReplies(store)
    faulty = FaultyStore(slow)
    a = elector(faulty, "node-a", lease_s=2.0, renew_s=0.1)
    b = elector(store, "node-b", lease_s=2.0, renew_s=0.1)
    slow.delay_s = 1.5
    assert (await a.run_once()).is_leader
    faulty.fail("acquire_leader_lease", lambda n: True, StoreUnavailable("database is down"))

    with trio.fail_after(5):
        while True:
            ra = await a.run_once()
            rb = await b.run_once()
            assert not (ra.is_leader and rb.is_leader), "two leaders at once"
            if rb.is_leader:
                break
            await trio.sleep(POLL_S)
    assert not a.is_leader
    assert (await lease_row(database_url) or {}).get("holder") == "node-b"


async def test_follower_stays_follower_while_database_is_down(store: Store) -> None:
    """A node that is not leader never claims leadership on a failed election round."""
    faulty = FaultyStore(store)
    a, b = elector(store, "node-a"), elector(faulty, "node-b")
    assert (await a.run_once()).is_leader
    faulty.fail("acquire_leader_lease", lambda n: True, StoreUnavailable("database is down"))
    for _ in range(3):
        assert await b.run_once() == ElectorResult(is_leader=False, changed=False)
