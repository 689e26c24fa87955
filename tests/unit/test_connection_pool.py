"""The outbound keep-alive pool stays bounded over any number of target hosts."""

from __future__ import annotations

from runlater.delivery.http11 import Connection
from runlater.delivery.transport import ConnectionPool


class FakeConnection(Connection):
    """A connection without a socket: the pool only reads ``idle_since`` and calls
    ``is_alive`` and ``close``, so those are all this one has."""

    __slots__ = ()

    def __init__(self) -> None:  # no stream, socket or h11 state: the pool never uses them
        self.idle_since = 0.0
        self.closed = False

    def is_alive(self) -> bool:
        return not self.closed

    def close(self) -> None:
        self.closed = True


def test_idle_connections_over_all_hosts_are_capped_oldest_first() -> None:
    """10,000 hosts called once each (a tenant with wildcard DNS): at most ``max_idle_total``
    stay open, the most recently used ones; the others are closed."""
    pool = ConnectionPool(max_idle_per_host=8, idle_timeout_s=60, max_idle_total=100)
    conns = []
    for i in range(10_000):
        conn = FakeConnection()
        conns.append(conn)
        pool.checkin(("https", f"h{i}.example", 443), conn, now=i * 0.001)
    assert pool.idle_count() == 100
    assert all(c.closed for c in conns[:-100]) and not any(c.closed for c in conns[-100:])


def test_a_checkout_sweeps_expired_connections_of_other_hosts() -> None:
    """Idle connections of hosts no longer called are closed by the next request to any host,
    not only by the next check-in."""
    pool = ConnectionPool(max_idle_per_host=8, idle_timeout_s=5)
    old = FakeConnection()
    pool.checkin(("http", "gone.example", 80), old, now=0.0)
    assert pool.checkout(("http", "other.example", 80), now=10.0) is None
    assert old.closed and pool.idle_count() == 0
