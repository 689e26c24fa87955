"""Host name resolution for outbound HTTP, behind a small interface.

The SSRF guard must check the very addresses a connection then goes to, so resolution is a
step of its own that both the API-time check (``ssrf.check_url``) and the transport's connect
step call. Keeping it behind ``Resolver`` lets tests pin answers — including an answer that
changes between validation and connect (DNS rebinding) — without touching real DNS.
IP literals never reach a resolver: ``ssrf.ip_literal`` normalises them first.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable, Mapping
from typing import Protocol

import trio

from runlater.errors import RunlaterError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class ResolveError(RunlaterError):
    """Raised by a ``Resolver`` when a host name has no usable address (NXDOMAIN, no A/AAAA
    record, a name that cannot be encoded). Not a security verdict: the caller decides."""


class Resolver(Protocol):
    """Turns a host name into every address it currently resolves to."""

    async def resolve(self, host: str, port: int) -> list[IPAddress]: ...


def _dedupe(addresses: Iterable[IPAddress]) -> list[IPAddress]:
    return list(dict.fromkeys(addresses))


class SystemResolver:
    """The operating system's resolver (``getaddrinfo`` in trio's thread pool)."""

    async def resolve(self, host: str, port: int) -> list[IPAddress]:
        try:
            infos = await trio.socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            raise ResolveError(f"host {host!r} does not resolve: {exc}") from None
        addresses = _dedupe(
            # A scoped IPv6 answer ("fe80::1%eth0") is checked without its zone.
            ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
            for info in infos
        )
        if not addresses:
            raise ResolveError(f"host {host!r} has no addresses")
        return addresses


class StaticResolver:
    """Answers from a table (tests; hosts pinned by configuration).

    ``answers`` maps a lower-case name to its addresses; change it at any time with ``set``.
    Unknown names fail as NXDOMAIN would. ``calls`` lists every name asked, in order.
    """

    def __init__(self, answers: Mapping[str, Iterable[str]] | None = None) -> None:
        self.answers: dict[str, list[IPAddress]] = {}
        self.calls: list[str] = []
        for host, addresses in (answers or {}).items():
            self.set(host, addresses)

    def set(self, host: str, addresses: Iterable[str]) -> None:
        self.answers[host.lower().rstrip(".")] = [ipaddress.ip_address(a) for a in addresses]

    async def resolve(self, host: str, port: int) -> list[IPAddress]:
        await trio.lowlevel.checkpoint()
        self.calls.append(host)
        addresses = self.answers.get(host.lower().rstrip("."))
        if not addresses:
            raise ResolveError(f"host {host!r} does not resolve: no such name")
        return list(addresses)
