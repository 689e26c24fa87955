"""Which URLs Runlater may call: no private, loopback, link-local or metadata targets.

Two callers share these rules: the API (``check_url`` when a URL is stored) and the delivery
transport's connect step (``resolve_checked``, then it connects to a checked address, so a
DNS answer that changes after validation cannot redirect a delivery).

- IP literals are normalised here, without DNS, the way ``inet_aton`` and browsers read them:
  ``2130706433``, ``0177.0.0.1``, ``0x7f.1`` and ``127.1`` are all 127.0.0.1.
- Every address a name resolves to is checked; one bad answer among good ones blocks the name.
- IPv4 hidden in IPv6 (mapped, compatible, translated, NAT64, 6to4, Teredo) is unwrapped and
  checked as IPv4. The rules are explicit networks, not ``ipaddress.is_global`` alone, whose
  answer differs between Python patch releases (3.11.7 calls ``fec0::1`` and ``3fff::1`` global).
- ``allow_private`` (RUNLATER_ALLOW_PRIVATE_TARGETS, for tests and local development) admits
  loopback, RFC 1918 and unique-local addresses only; metadata addresses stay blocked.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from urllib.parse import urlsplit

import httpx

from runlater.delivery.resolver import IPAddress, ResolveError, Resolver, SystemResolver
from runlater.errors import RunlaterError

_v4 = ipaddress.IPv4Network
_v6 = ipaddress.IPv6Network

METADATA = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean, ...
        "169.254.170.2",  # AWS ECS task metadata
        "fd00:ec2::254",  # AWS IMDS over IPv6
        "100.100.100.200",  # Alibaba Cloud
        "168.63.129.16",  # Azure wire server (a public address!)
        "192.0.0.192",  # Oracle Cloud
    )
)
_LOOPBACK = (_v4("127.0.0.0/8"), _v6("::1/128"))
_PRIVATE = (_v4("10.0.0.0/8"), _v4("172.16.0.0/12"), _v4("192.168.0.0/16"), _v6("fc00::/7"))
_CGNAT = _v4("100.64.0.0/10")
_RESERVED_V4 = tuple(
    _v4(n)
    for n in (
        "0.0.0.0/8",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.88.99.0/24",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "240.0.0.0/4",
    )
)
_GLOBAL_UNICAST = _v6("2000::/3")
_RESERVED_V6 = tuple(_v6(n) for n in ("2001::/23", "2001:db8::/32", "3fff::/20", "fec0::/10"))
_NAT64 = _v6("64:ff9b::/96")
_NAT64_LOCAL = _v6("64:ff9b:1::/48")  # RFC 8215: the IPv4 part's position depends on the prefix
_TRANSLATED = _v6("::ffff:0:0:0/96")  # RFC 2765 IPv4-translated
_ALLOWED_PORTS = (80, 443)

_V4_PART = re.compile(r"0[xX][0-9a-fA-F]*|0[0-7]*|[1-9][0-9]*")
_DOTS = str.maketrans({"\u3002": ".", "\uff0e": ".", "\uff61": "."})


class UrlNotAllowed(RunlaterError):
    """Raised by the SSRF guard (API validation, delivery transport) for a URL or address
    Runlater must not call, with the reason as message."""


def _v4_number(part: str) -> int:
    if part[:2] in ("0x", "0X"):
        return int(part[2:] or "0", 16)
    if len(part) > 1 and part[0] == "0":
        return int(part, 8)
    return int(part)


def _loose_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """``inet_aton``'s reading of ``host``: 1 to 4 parts, each decimal, octal or hex, the last one
    filling the remaining bytes. None when ``host`` is a name; UrlNotAllowed when it is
    numeric but out of range (no resolver gets to guess what it means)."""
    parts = host[:-1].split(".") if host.endswith(".") else host.split(".")
    if not 1 <= len(parts) <= 4 or not all(_V4_PART.fullmatch(p) for p in parts):
        return None
    numbers = [_v4_number(p) for p in parts]
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 1 << (8 * (5 - len(numbers))):
        raise UrlNotAllowed(f"invalid IPv4 address {host!r}")
    value = last
    for i, n in enumerate(head):
        value |= n << (24 - 8 * i)
    return ipaddress.IPv4Address(value)


def ip_literal(host: str) -> IPAddress | None:
    """The address ``host`` spells, in any IPv4 spelling or as IPv6 (brackets and a zone id
    allowed), or None when ``host`` is a name to resolve."""
    if not host.isascii():  # full-width digits and dots read as ASCII, as IDNA would map them
        host = unicodedata.normalize("NFKC", host).translate(_DOTS)
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if ":" in host:
        try:
            return ipaddress.IPv6Address(host.split("%", 1)[0])
        except ValueError:
            raise UrlNotAllowed(f"invalid IPv6 address {host!r}") from None
    return _loose_ipv4(host)


def _embedded_ipv4(addr: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address a packet to ``addr`` may really reach, if any."""
    if addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    if addr.sixtofour is not None:
        return addr.sixtofour
    if addr.teredo is not None:
        return addr.teredo[1]  # the client, de-obfuscated
    if addr in _NAT64 or addr in _TRANSLATED:
        return ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    if int(addr) >> 32 == 0 and int(addr) > 1:  # deprecated IPv4-compatible ::a.b.c.d
        return ipaddress.IPv4Address(int(addr))
    return None


def _reason(addr: IPAddress, allow_private: bool) -> str | None:
    if addr in METADATA:
        return "cloud metadata address"
    if addr.is_unspecified:
        return "unspecified address"
    if addr.is_multicast:
        return "multicast address"
    if addr.is_link_local:
        return "link-local address"
    if isinstance(addr, ipaddress.IPv4Address) and int(addr) == 0xFFFFFFFF:
        return "broadcast address"
    if any(addr in net for net in _LOOPBACK):
        return None if allow_private else "loopback address"
    if any(addr in net for net in _PRIVATE):
        return None if allow_private else "private address"
    if isinstance(addr, ipaddress.IPv4Address):
        if addr in _CGNAT:
            return "shared (CGNAT) address"
        if any(addr in net for net in _RESERVED_V4) or not addr.is_global:
            return "reserved address"
        return None
    if addr.is_site_local:
        return "site-local address"
    if addr not in _GLOBAL_UNICAST or any(addr in net for net in _RESERVED_V6):
        return "reserved address"
    if not addr.is_global:
        return "reserved address"
    return None


def blocked_reason(addr: IPAddress, *, allow_private: bool) -> str | None:
    """Why ``addr`` may not be called, or None when it may."""
    if isinstance(addr, ipaddress.IPv6Address):
        if addr in _NAT64_LOCAL:
            return "reserved address"
        inner = _embedded_ipv4(addr)
        if inner is not None:
            if addr in METADATA:
                return "cloud metadata address"
            reason = _reason(inner, allow_private)
            if reason is not None:
                return f"{reason} ({inner} inside IPv6)"
            if addr.teredo is not None:  # routed through third-party relays: never a target
                return "reserved address (Teredo)"
            return None
    return _reason(addr, allow_private)


def check_scheme_port(scheme: str, port: int) -> None:
    """UrlNotAllowed unless ``scheme`` is http(s) and ``port`` is 80, 443 or 1024 to 65535."""
    if scheme not in ("http", "https"):
        raise UrlNotAllowed("only http and https URLs can be called")
    if port not in _ALLOWED_PORTS and not 1024 <= port <= 65535:
        raise UrlNotAllowed(f"port {port} is not allowed (80, 443 or 1024 and above)")


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
    check_scheme_port(parts.scheme, port)
    return parts.scheme, host, port


_DEFAULT_RESOLVER = SystemResolver()


async def resolve_checked(
    host: str, port: int, *, allow_private: bool, resolver: Resolver | None = None
) -> list[IPAddress]:
    """Every address ``host`` stands for, if each one may be called; UrlNotAllowed if any may
    not. A literal is normalised and checked without DNS; a name goes to ``resolver``
    (ResolveError propagates: a name that does not resolve is not a verdict on safety)."""
    literal = ip_literal(host)
    if literal is not None:
        addresses = [literal]
    else:
        addresses = await (resolver or _DEFAULT_RESOLVER).resolve(host, port)
    for addr in addresses:
        if reason := blocked_reason(addr, allow_private=allow_private):
            article = "an" if reason[0] in "aeiou" else "a"
            what = (
                f"is {article} {reason}"
                if literal is not None
                else (f"resolves to {article} {reason} ({addr})")
            )
            raise UrlNotAllowed(f"{host} {what}{_private_hint(addr, allow_private)}")
    return addresses


PRIVATE_TARGETS_HINT = (
    "; to call loopback and private addresses (local development, tests), start the server "
    "with RUNLATER_ALLOW_PRIVATE_TARGETS=true"
)


def _private_hint(addr: IPAddress, allow_private: bool) -> str:
    """How to allow ``addr`` when only the private-targets setting blocks it."""
    if not allow_private and blocked_reason(addr, allow_private=True) is None:
        return PRIVATE_TARGETS_HINT
    return ""


async def check_url(
    url: str, *, allow_private: bool, resolver: Resolver | None = None
) -> str | None:
    """Raise UrlNotAllowed when ``url`` is known to be blocked: not an http(s) URL the delivery
    client can send (httpx refuses e.g. ``0135.0270.0330.042``, an octal spelling of a public
    address, with an error that is not an ``httpx.HTTPError``), a blocked scheme or port, an IP
    literal in a blocked range, or a name that resolves to a blocked address.

    A name that does not resolve now is not known to be blocked: the answer is a warning to show
    the caller (a typo in the host is still noticed), and the connect-time check decides at
    each delivery. None when the URL resolved and passed.
    """
    _scheme, host, port = parse_target(url)
    warning = None
    try:
        await resolve_checked(host, port, allow_private=allow_private, resolver=resolver)
    except ResolveError as exc:
        warning = (
            f"{exc}; accepted anyway: each delivery resolves the name again and checks the "
            "address it connects to (if the host is a typo, fix it)"
        )
    try:
        httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise UrlNotAllowed(f"invalid URL: {exc}") from None
    return warning
