"""Which URLs Runlater may call: no private, loopback, link-local or metadata targets.

Every address a host name resolves to is checked (odd IPv4 spellings like ``2130706433`` or
``0x7f.1`` are normalised by the resolver before the check). IPv4 addresses hidden in IPv6
(mapped, compatible, 6to4, NAT64, Teredo) are unwrapped and checked as IPv4.
``allow_private`` (RUNLATER_ALLOW_PRIVATE_TARGETS, for tests and local development) admits
loopback and private ranges; cloud metadata addresses stay blocked even then.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

import trio

from runlater.errors import RunlaterError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

METADATA = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",
        "169.254.170.2",
        "fd00:ec2::254",
        "100.100.100.200",
        "168.63.129.16",
    )
)
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
_ALLOWED_PORTS = (80, 443)


class UrlNotAllowed(RunlaterError):
    """Raised by the SSRF guard for a URL or address Runlater must not call."""


def _unwrap(addr: IPAddress) -> IPAddress:
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            return addr.ipv4_mapped
        if addr.sixtofour is not None:
            return addr.sixtofour
        if addr.teredo is not None:
            return addr.teredo[1]
        if addr in _NAT64 or addr in _NAT64_LOCAL:
            return ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
        packed = addr.packed
        if packed[:12] == bytes(12) and int(addr) > 1:  # deprecated IPv4-compatible ::a.b.c.d
            return ipaddress.IPv4Address(packed[12:])
    return addr


def blocked_reason(addr: IPAddress, *, allow_private: bool) -> str | None:
    """Why ``addr`` may not be called, or None when it may."""
    inner = _unwrap(addr)
    for candidate in {addr, inner}:
        if candidate in METADATA:
            return "cloud metadata address"
        if candidate.is_unspecified:
            return "unspecified address"
        if candidate.is_multicast:
            return "multicast address"
        if candidate.is_link_local:
            return "link-local address"
        if allow_private and (candidate.is_loopback or candidate.is_private):
            continue
        if candidate.is_loopback:
            return "loopback address"
        if isinstance(candidate, ipaddress.IPv4Address) and candidate in _CGNAT:
            return "shared (CGNAT) address"
        if candidate.is_private:
            return "private address"
        if candidate.is_reserved or not candidate.is_global:
            return "reserved address"
    return None


def parse_target(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an http(s) URL, or UrlNotAllowed."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UrlNotAllowed(f"invalid URL: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise UrlNotAllowed("only http and https URLs can be called")
    host = parts.hostname
    if not host:
        raise UrlNotAllowed("URL has no host")
    if parts.username is not None or parts.password is not None:
        raise UrlNotAllowed("credentials in the URL are not allowed; use an Authorization header")
    if port is None:
        port = 443 if parts.scheme == "https" else 80
    if port not in _ALLOWED_PORTS and port < 1024:
        raise UrlNotAllowed(f"port {port} is not allowed (80, 443 or 1024 and above)")
    return parts.scheme, host, port


async def resolve_checked(host: str, port: int, *, allow_private: bool) -> list[IPAddress]:
    """Resolve ``host`` and return its addresses if every one of them may be called."""
    try:
        infos = await trio.socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UrlNotAllowed(f"host {host!r} does not resolve: {exc}") from None
    addresses = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        addr = ipaddress.ip_address(sockaddr[0].split("%", 1)[0])
        if reason := blocked_reason(addr, allow_private=allow_private):
            raise UrlNotAllowed(f"{host} resolves to a {reason} ({addr})")
        addresses.append(addr)
    if not addresses:
        raise UrlNotAllowed(f"host {host!r} has no addresses")
    return addresses


async def check_url(url: str, *, allow_private: bool) -> None:
    """Raise UrlNotAllowed unless ``url`` is an http(s) URL whose every address may be called."""
    _scheme, host, port = parse_target(url)
    await resolve_checked(host, port, allow_private=allow_private)
