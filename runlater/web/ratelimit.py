"""Rate limits of the API: token buckets per client address and per API key.

``RUNLATER_RATE_LIMIT_PER_IP`` / ``_PER_KEY`` are requests per minute (``0`` turns that limit
off). A bucket holds up to that many tokens (the burst) and refills at limit/60 per second;
a request takes one token or is answered ``429 rate_limited`` with ``Retry-After`` = whole
seconds until a token is back (at least 1).

- Per client address (an IPv6 client per /64: ``client_key``), on every authenticated
  ``/api/v1`` route, checked *before* authentication, so guessing keys is limited too. The
  public spec and docs pages (``/api/v1/openapi.json``, ``/api/v1/docs``) are app routes
  outside the API blueprint and are not limited (their OpenAPI entries promise no 429 either).
- Per API key (its row id), after authentication.

The address is the TCP peer hypercorn reports (``request.remote_addr``). Forwarded headers
(``X-Forwarded-For``, ``Forwarded``) are *not* trusted: anyone can send them, so trusting them
by default would let each request pick its own bucket. Behind a reverse proxy every client
therefore shares the proxy's bucket; set the per-IP limit for that or turn it off and let the
proxy limit per client.

Buckets live in the process: a cluster of N nodes admits up to N times the configured rate
(the accepted trade-off against a database round trip per request). Memory is bounded: a
bucket idle long enough to be full again is indistinguishable from a new one and is dropped,
and at most ``max_buckets`` are kept (the least recently used go first).

Time comes from an injected monotonic source (seconds as a float), so tests set it.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable

from quart import g, request

from runlater.clock import Clock, SystemClock
from runlater.config import Settings
from runlater.web.errors import ApiError

Seconds = Callable[[], float]
MAX_BUCKETS = 100_000


def monotonic_seconds(clock: Clock) -> Seconds:
    """The app's elapsed-time source: ``time.monotonic`` with the system clock, else seconds
    read from the injected clock (a ``ManualClock`` in tests: time moves when they move it)."""
    if isinstance(clock, SystemClock):
        return time.monotonic
    return lambda: clock.now().timestamp()


class TokenBuckets:
    """One token bucket per key: capacity ``per_minute``, refilled at ``per_minute / 60``/s."""

    def __init__(self, per_minute: int, now: Seconds, *, max_buckets: int = MAX_BUCKETS) -> None:
        if per_minute < 1:
            raise ValueError("per_minute must be at least 1")
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.full_after_s = self.capacity / self.rate  # an idle bucket is full again after this
        self.max_buckets = max_buckets
        self._now = now
        # key -> [tokens, last update], least recently used first.
        self._buckets: OrderedDict[Hashable, list[float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, key: Hashable) -> float:
        """Take a token for ``key``: 0.0 when admitted, else seconds until one is back."""
        now = self._now()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = [self.capacity, now]
        else:
            # A clock that went backwards refills nothing (and never adds tokens).
            elapsed = max(0.0, now - bucket[1])
            bucket[0] = min(self.capacity, bucket[0] + elapsed * self.rate)
            bucket[1] = now
            self._buckets.move_to_end(key)
        self._evict(now)
        if bucket[0] >= 1.0:
            bucket[0] -= 1.0
            return 0.0
        return (1.0 - bucket[0]) / self.rate

    def _evict(self, now: float) -> None:
        buckets = self._buckets
        while len(buckets) > self.max_buckets:
            buckets.popitem(last=False)
        # Least recently used first: drop a couple of those idle long enough to be full again
        # (each call adds at most one bucket, so stale ones never pile up).
        for _ in range(2):
            oldest = next(iter(buckets))
            if now - buckets[oldest][1] < self.full_after_s:
                break
            del buckets[oldest]


def client_key(address: str) -> str:
    """The bucket of a client address: the address itself for IPv4, its /64 for IPv6 — one
    host usually holds a whole /64, and keyed per address it could walk through 2^64 buckets,
    pushing everyone else's out of the bounded map (which would reset their limits)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def retry_after(wait_s: float) -> str:
    """``Retry-After``: whole seconds, at least 1."""
    return str(max(1, math.ceil(wait_s)))


def _limited(wait_s: float, what: str) -> ApiError:
    return ApiError(
        429,
        "rate_limited",
        f"too many requests {what}; retry after {retry_after(wait_s)} s",
        headers={"Retry-After": retry_after(wait_s)},
    )


class RateLimits:
    """The API's two limits; ``check_client`` and ``check_key`` are ``before_request`` hooks."""

    def __init__(self, settings: Settings, now: Seconds) -> None:
        self.per_ip = (
            TokenBuckets(settings.rate_limit_per_ip, now) if settings.rate_limit_per_ip else None
        )
        self.per_key = (
            TokenBuckets(settings.rate_limit_per_key, now) if settings.rate_limit_per_key else None
        )

    async def check_client(self) -> None:
        """Before authentication: one token of the client address's bucket."""
        if self.per_ip is None:
            return
        wait_s = self.per_ip.take(client_key(request.remote_addr or ""))
        if wait_s:
            # Read the body before answering early: hypercorn leaves a keep-alive connection
            # hanging when the response completes before the request body has arrived.
            await request.get_data(cache=True)
            raise _limited(wait_s, "from this address")

    async def check_key(self) -> None:
        """After authentication: one token of the API key's bucket."""
        if self.per_key is None or "api_key_id" not in g:
            return
        wait_s = self.per_key.take(g.api_key_id)
        if wait_s:
            raise _limited(wait_s, "for this API key")
