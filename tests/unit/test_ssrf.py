"""The SSRF guard, through the real code path the API uses (``check_url``), case by case.

Names resolve through a stub resolver (no DNS); literals must be normalised without one.
"""

from __future__ import annotations

import contextlib
import ipaddress

import pytest

from runlater.delivery.resolver import StaticResolver
from runlater.delivery.ssrf import (
    UrlNotAllowed,
    blocked_reason,
    check_url,
    ip_literal,
    parse_target,
)

PUBLIC4 = "93.184.216.34"
PUBLIC6 = "2606:2800:220:1:248:1893:25c8:1946"
# Teredo: server 65.54.227.120, client 10.0.0.1 stored obfuscated (bit-inverted) as f5ff:fffe.
TEREDO_PRIVATE = "2001:0:4136:e378:8000:63bf:f5ff:fffe"

ANSWERS = {
    "public.test": [PUBLIC4, PUBLIC6],
    "internal.test": ["10.0.0.5"],
    "localhost.test": ["127.0.0.1"],
    "mixed.test": [PUBLIC4, "93.184.216.35", "10.0.0.1"],
    "mixed6.test": [PUBLIC6, "::1"],
    "metadata.test": ["169.254.169.254"],
    "mapped.test": ["::ffff:10.0.0.1"],
    "cgnat.test": ["100.64.1.1"],
    "linklocal6.test": ["fe80::1"],
}

BLOCKED, ALLOWED = True, False


def case(
    url: str, blocked: bool, *, private: bool = False, id: str, why: str = ""
) -> pytest.ParameterSet:
    """One URL and the verdict; for a blocked one, ``why`` is part of the expected reason (so a
    case cannot pass by failing for some unrelated reason)."""
    return pytest.param(url, private, blocked, why, id=id + ("+allow_private" if private else ""))


CASES = [
    # IPv4 loopback in every spelling
    case("http://127.0.0.1/", BLOCKED, id="dotted", why="loopback"),
    case("http://2130706433/", BLOCKED, id="decimal", why="loopback"),
    case("http://0177.0.0.1/", BLOCKED, id="octal", why="loopback"),
    case("http://017700000001/", BLOCKED, id="octal-whole", why="loopback"),
    case("http://0x7f.1/", BLOCKED, id="hex-short", why="loopback"),
    case("http://0x7f000001/", BLOCKED, id="hex-whole", why="loopback"),
    case("http://0X7F.0.0.1/", BLOCKED, id="hex-upper", why="loopback"),
    case("http://127.1/", BLOCKED, id="short-2", why="loopback"),
    case("http://127.0.1/", BLOCKED, id="short-3", why="loopback"),
    case("http://0177.1/", BLOCKED, id="octal-short", why="loopback"),
    case("http://0x7f.0.0x0.01/", BLOCKED, id="mixed-hex-octal", why="loopback"),
    case("http://127.0.0.1.:8080/", BLOCKED, id="trailing-dot-port", why="loopback"),
    case("http://127.0.0.1:8080/", BLOCKED, id="dotted-port", why="loopback"),
    case("http://2130706433:8080/x", BLOCKED, id="decimal-port", why="loopback"),
    case("http://0x7f.1:9000/", BLOCKED, id="hex-port", why="loopback"),
    case(
        "http://\uff11\uff12\uff17.\uff10.\uff10.\uff11/",
        BLOCKED,
        id="fullwidth-digits",
        why="loopback",
    ),
    case("http://256.0.0.1/", BLOCKED, id="out-of-range", why="invalid"),
    # IPv4 private, shared, special
    case("http://10.0.0.1/", BLOCKED, id="10/8", why="private"),
    case("http://172.16.0.1/", BLOCKED, id="172.16/12-low", why="private"),
    case("http://172.31.255.254/", BLOCKED, id="172.16/12-high", why="private"),
    case("http://192.168.1.1/", BLOCKED, id="192.168/16", why="private"),
    case("http://0xc0a80101/", BLOCKED, id="192.168-hex", why="private"),
    case("http://100.64.0.1/", BLOCKED, id="cgnat-low", why="CGNAT"),
    case("http://100.127.255.254/", BLOCKED, id="cgnat-high", why="CGNAT"),
    case("http://100.64.0.1/", BLOCKED, private=True, id="cgnat", why="CGNAT"),
    case("http://0.0.0.0/", BLOCKED, id="unspecified", why="unspecified"),
    case("http://0/", BLOCKED, private=True, id="unspecified-short", why="unspecified"),
    case("http://0.1.2.3/", BLOCKED, id="this-network", why="reserved"),
    case("http://255.255.255.255/", BLOCKED, private=True, id="broadcast", why="broadcast"),
    case("http://240.0.0.1/", BLOCKED, private=True, id="240/4", why="reserved"),
    case("http://224.0.0.1/", BLOCKED, id="multicast", why="multicast"),
    case("http://192.0.2.10/", BLOCKED, id="test-net-1", why="reserved"),
    case("http://198.18.0.1/", BLOCKED, id="benchmarking", why="reserved"),
    case("http://169.254.1.1/", BLOCKED, private=True, id="link-local", why="link-local"),
    # cloud metadata: blocked even when private targets are allowed
    case(
        "http://169.254.169.254/latest/meta-data/", BLOCKED, id="aws-metadata", why="cloud metadata"
    ),
    case("http://169.254.169.254/", BLOCKED, private=True, id="aws-metadata", why="cloud metadata"),
    case("http://2852039166/", BLOCKED, private=True, id="metadata-decimal", why="cloud metadata"),
    case(
        "http://0xa9.0xfe.0xa9.0xfe/",
        BLOCKED,
        private=True,
        id="metadata-hex",
        why="cloud metadata",
    ),
    case(
        "http://169.254.170.2/v2/credentials",
        BLOCKED,
        private=True,
        id="ecs-metadata",
        why="cloud metadata",
    ),
    case(
        "http://[fd00:ec2::254]/", BLOCKED, private=True, id="aws-metadata-v6", why="cloud metadata"
    ),
    case(
        "http://100.100.100.200/",
        BLOCKED,
        private=True,
        id="alibaba-metadata",
        why="cloud metadata",
    ),
    case("http://168.63.129.16/", BLOCKED, id="azure-wireserver", why="cloud metadata"),
    case(
        "http://[::ffff:169.254.169.254]/",
        BLOCKED,
        private=True,
        id="metadata-mapped",
        why="cloud metadata",
    ),
    case(
        "http://[64:ff9b::a9fe:a9fe]/",
        BLOCKED,
        private=True,
        id="metadata-nat64",
        why="cloud metadata",
    ),
    # IPv6 forms, and IPv4 hidden in IPv6
    case("http://[::1]/", BLOCKED, id="v6-loopback", why="loopback"),
    case("http://[::1]:8080/", BLOCKED, id="v6-loopback-port", why="loopback"),
    case("http://[::ffff:127.0.0.1]/", BLOCKED, id="v4-mapped-dotted", why="loopback"),
    case("http://[::ffff:7f00:1]/", BLOCKED, id="v4-mapped-hex", why="loopback"),
    case("http://[::127.0.0.1]/", BLOCKED, id="v4-compatible", why="loopback"),
    case("http://[::ffff:0:7f00:1]/", BLOCKED, id="v4-translated", why="loopback"),
    case("http://[2002:7f00:1::]/", BLOCKED, id="6to4-loopback", why="loopback"),
    case("http://[2002:a00:1::1]/", BLOCKED, id="6to4-private", why="private"),
    case("http://[64:ff9b::7f00:1]/", BLOCKED, id="nat64-loopback", why="loopback"),
    case("http://[64:ff9b::a00:1]/", BLOCKED, id="nat64-private", why="private"),
    case("http://[64:ff9b:1::1]/", BLOCKED, id="nat64-local-use", why="reserved"),
    case(f"http://[{TEREDO_PRIVATE}]/", BLOCKED, id="teredo-private-client", why="private"),
    case(f"http://[{TEREDO_PRIVATE}]/", BLOCKED, private=True, id="teredo", why="Teredo"),
    case("http://[fe80::1%25eth0]/", BLOCKED, id="link-local-zone", why="link-local"),
    case("http://[fe80::1]/", BLOCKED, private=True, id="link-local-v6", why="link-local"),
    case("http://[fc00::1]/", BLOCKED, id="ula-fc", why="private"),
    case("http://[fd12:3456:789a::1]/", BLOCKED, id="ula-fd", why="private"),
    case("http://[fec0::1]/", BLOCKED, private=True, id="site-local", why="site-local"),
    case("http://[ff02::1]/", BLOCKED, private=True, id="v6-multicast", why="multicast"),
    case("http://[::]/", BLOCKED, private=True, id="v6-unspecified", why="unspecified"),
    case("http://[2001:db8::1]/", BLOCKED, id="v6-documentation", why="reserved"),
    case("http://[100::1]/", BLOCKED, id="v6-discard", why="reserved"),
    # ports, schemes, credentials, malformed
    case(f"http://{PUBLIC4}:22/", BLOCKED, id="port-22", why="is not allowed"),
    case(f"http://{PUBLIC4}:25/", BLOCKED, id="port-25", why="is not allowed"),
    case(f"http://{PUBLIC4}:1023/", BLOCKED, id="port-1023", why="is not allowed"),
    case(f"https://{PUBLIC4}:0/", BLOCKED, id="port-0", why="is not allowed"),
    case(f"http://{PUBLIC4}:65536/", BLOCKED, id="port-too-big", why="Port out of range"),
    case(f"ftp://{PUBLIC4}/", BLOCKED, id="ftp", why="only http"),
    case("file:///etc/passwd", BLOCKED, id="file", why="only http"),
    case(f"gopher://{PUBLIC4}:70/", BLOCKED, id="gopher", why="only http"),
    case("javascript:alert(1)", BLOCKED, id="javascript", why="only http"),
    case(f"http://user:secret@{PUBLIC4}/", BLOCKED, id="credentials", why="credentials"),
    case(f"http://user@{PUBLIC4}/", BLOCKED, id="username-only", why="credentials"),
    case("http://0135.0270.0330.042/", BLOCKED, id="octal-public-httpx-refuses", why="invalid URL"),
    case("http://0177.0.0.1:8080/", BLOCKED, private=True, id="octal-loopback", why="invalid URL"),
    case("http:///path", BLOCKED, id="no-host", why="no host"),
    case("http://[::1/", BLOCKED, id="broken-brackets", why="invalid"),
    # names, through the stub resolver: every answer is checked
    case("http://internal.test/", BLOCKED, id="name-private", why="private"),
    case("http://localhost.test:8080/", BLOCKED, id="name-loopback", why="loopback"),
    case("http://mixed.test/", BLOCKED, id="name-one-bad-of-three", why="private"),
    case("http://mixed6.test/", BLOCKED, id="name-v6-one-bad", why="loopback"),
    case("http://metadata.test/", BLOCKED, private=True, id="name-metadata", why="cloud metadata"),
    case("http://mapped.test/", BLOCKED, id="name-mapped-private", why="private"),
    case("http://cgnat.test/", BLOCKED, private=True, id="name-cgnat", why="CGNAT"),
    case("http://linklocal6.test/", BLOCKED, private=True, id="name-link-local", why="link-local"),
    # allowed: public addresses in any spelling, and private ones when admitted
    case(f"http://{PUBLIC4}/", ALLOWED, id="public-v4"),
    case(f"https://{PUBLIC4}:8443/hook?x=1", ALLOWED, id="public-v4-port"),
    case("http://1572395042/", ALLOWED, id="public-v4-decimal"),
    case(f"http://[{PUBLIC6}]/", ALLOWED, id="public-v6"),
    case(f"https://[{PUBLIC6}]:443/", ALLOWED, id="public-v6-port"),
    case(f"http://[::ffff:{PUBLIC4}]/", ALLOWED, id="public-v4-mapped"),
    case("http://[2002:5db8:d822::1]/", ALLOWED, id="public-6to4"),
    case("http://[64:ff9b::5db8:d822]/", ALLOWED, id="public-nat64"),
    case("http://public.test/", ALLOWED, id="name-public"),
    case("http://PUBLIC.test./", ALLOWED, id="name-public-case-dot"),
    case("http://127.0.0.1:8080/", ALLOWED, private=True, id="loopback"),
    case("http://0x7f.1:8080/", ALLOWED, private=True, id="loopback-hex"),
    case("http://10.0.0.1/", ALLOWED, private=True, id="10/8"),
    case("http://192.168.1.1/", ALLOWED, private=True, id="192.168/16"),
    case("http://[::1]:8080/", ALLOWED, private=True, id="v6-loopback"),
    case("http://[::ffff:127.0.0.1]/", ALLOWED, private=True, id="v4-mapped-loopback"),
    case("http://[fd12:3456:789a::1]/", ALLOWED, private=True, id="ula"),
    case("http://localhost.test:8080/", ALLOWED, private=True, id="name-loopback"),
]


@pytest.mark.parametrize(("url", "allow_private", "blocked", "why"), CASES)
async def test_guard(url: str, allow_private: bool, blocked: bool, why: str) -> None:
    resolver = StaticResolver(ANSWERS)
    if blocked:
        with pytest.raises(UrlNotAllowed) as caught:
            await check_url(url, allow_private=allow_private, resolver=resolver)
        assert why in str(caught.value)
    else:
        assert await check_url(url, allow_private=allow_private, resolver=resolver) is None


def test_the_matrix_is_large() -> None:
    assert len(CASES) >= 60


async def test_a_name_that_does_not_resolve_is_a_warning_not_a_verdict() -> None:
    """Offline, or with a typo in the host: not known to be blocked, so the API accepts the URL
    and says why it may not work; the connect-time guard decides at delivery."""
    warning = await check_url(
        "https://nowhere.test/hook", allow_private=False, resolver=StaticResolver(ANSWERS)
    )
    assert warning is not None
    assert "'nowhere.test' does not resolve" in warning
    assert "accepted anyway" in warning


async def test_a_name_that_does_not_resolve_is_still_refused_for_a_blocked_port() -> None:
    with pytest.raises(UrlNotAllowed, match="port 22 is not allowed"):
        await check_url("http://nowhere.test:22/", allow_private=False, resolver=StaticResolver())


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8080/", "http://10.0.0.1/", "http://internal.test/", "http://[::1]/"]
)
async def test_a_private_target_names_the_setting_that_allows_it(url: str) -> None:
    with pytest.raises(UrlNotAllowed) as caught:
        await check_url(url, allow_private=False, resolver=StaticResolver(ANSWERS))
    assert "RUNLATER_ALLOW_PRIVATE_TARGETS=true" in str(caught.value)


@pytest.mark.parametrize("url", ["http://169.254.169.254/", "http://metadata.test/"])
async def test_a_metadata_target_does_not_suggest_the_setting(url: str) -> None:
    """The setting would not help: metadata addresses stay blocked with it."""
    with pytest.raises(UrlNotAllowed) as caught:
        await check_url(url, allow_private=False, resolver=StaticResolver(ANSWERS))
    assert "RUNLATER_ALLOW_PRIVATE_TARGETS" not in str(caught.value)


@pytest.mark.parametrize(
    ("spelling", "address"),
    [
        ("2130706433", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("10.1.258", "10.1.1.2"),
        ("0xa9fea9fe", "169.254.169.254"),
        ("[::ffff:7f00:1]", "::ffff:127.0.0.1"),
        ("fe80::1%eth0", "fe80::1"),
    ],
)
def test_literals_are_normalised_without_dns(spelling: str, address: str) -> None:
    assert ip_literal(spelling) == ipaddress.ip_address(address)


@pytest.mark.parametrize("name", ["example.com", "1.2.3.example", "0x7g.1", "1e3", "-1"])
def test_names_are_not_literals(name: str) -> None:
    assert ip_literal(name) is None


async def test_literals_never_reach_the_resolver() -> None:
    resolver = StaticResolver()
    for url in ("http://2130706433/", "http://0x7f.1/", f"http://[{PUBLIC6}]/"):
        with contextlib.suppress(UrlNotAllowed):
            await check_url(url, allow_private=False, resolver=resolver)
    assert resolver.calls == []


async def test_reasons_name_the_address() -> None:
    with pytest.raises(UrlNotAllowed, match=r"resolves to a private address \(10\.0\.0\.1\)"):
        await check_url("http://mixed.test/", allow_private=False, resolver=StaticResolver(ANSWERS))
    with pytest.raises(UrlNotAllowed, match="loopback address"):
        await check_url("http://0x7f.1/", allow_private=False)
    with pytest.raises(UrlNotAllowed, match="cloud metadata"):
        await check_url("http://2852039166/", allow_private=True)


def test_teredo_fixture_really_hides_a_private_client() -> None:
    teredo = ipaddress.IPv6Address(TEREDO_PRIVATE).teredo
    assert teredo is not None and str(teredo[1]) == "10.0.0.1"


def test_blocked_reason_and_parse_target_keep_their_meaning() -> None:
    assert blocked_reason(ipaddress.ip_address("10.0.0.1"), allow_private=False) is not None
    assert blocked_reason(ipaddress.ip_address("10.0.0.1"), allow_private=True) is None
    assert blocked_reason(ipaddress.ip_address(PUBLIC4), allow_private=False) is None
    assert parse_target("https://Example.com/x") == ("https", "example.com", 443)
    assert parse_target("http://example.com:8080") == ("http", "example.com", 8080)
