"""TrioTransport against real local servers (tests/helpers/hostile.py): keep-alive, reconnects,
concurrency, the SSRF check at connect time (DNS rebinding), TLS with SNI, bodies of every
framing, and cancellation leaving the pool consistent."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
import trio
import trustme

from runlater.delivery.client import Deliverer
from runlater.delivery.resolver import StaticResolver
from runlater.delivery.ssrf import check_url
from runlater.delivery.transport import BlockedTarget, TrioTransport
from tests.helpers.factories import claimed_execution
from tests.helpers.hostile import HostileServer, serve_hostile

PUBLIC = "93.184.216.34"


@asynccontextmanager
async def client_with(transport: TrioTransport) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=transport, trust_env=False) as client:
        yield client


def in_limbo(transport: TrioTransport) -> int:
    """Connections open but neither idle in the pool nor closed: must be 0 between requests."""
    stats = transport.stats
    return stats.opened - stats.closed - transport.pool.idle_count()


async def test_keep_alive_reuses_one_connection() -> None:
    transport = TrioTransport(allow_private=True)
    async with serve_hostile() as server, client_with(transport) as client:
        for _ in range(50):
            response = await client.get(server.url + "/")
            assert (response.status_code, response.content) == (200, b"ok")
        assert server.connections_opened == 1
        assert transport.stats.opened == 1
        assert transport.pool.idle_count() == 1


async def test_a_connection_the_server_closed_while_idle_is_replaced() -> None:
    transport = TrioTransport(allow_private=True)
    async with serve_hostile(idle_close_s=0.05) as server, client_with(transport) as client:
        assert (await client.get(server.url + "/")).status_code == 200
        await server.wait_until(lambda: server.open_connections == 0)
        assert (await client.get(server.url + "/")).status_code == 200
        assert server.connections_opened == 2
        assert transport.stats.retried == 0  # seen dead (EOF readable) before sending
        assert len(server.requests) == 2


async def test_a_kept_alive_connection_dead_at_send_time_is_retried_once() -> None:
    transport = TrioTransport(allow_private=True)
    async with serve_hostile(answer_limit=3) as server, client_with(transport) as client:
        for i in range(10):
            response = await client.get(f"{server.url}/n/{i}")
            assert response.status_code == 200
        # Requests 4, 7 and 10 each reached a connection that then closed unanswered.
        assert transport.stats.retried == 3
        assert server.connections_opened == 4
        assert [r.path for r in server.requests].count("/n/3") == 2
        assert in_limbo(transport) == 0


async def test_connection_close_every_n_responses_like_hypercorn() -> None:
    transport = TrioTransport(allow_private=True)
    async with serve_hostile(close_every=3) as server, client_with(transport) as client:
        for _ in range(10):
            assert (await client.get(server.url + "/")).status_code == 200
        assert server.connections_opened == 4
        assert transport.stats.retried == 0
        assert len(server.requests) == 10


async def test_a_fresh_connection_closed_without_answer_is_not_retried() -> None:
    transport = TrioTransport(allow_private=True)
    async with serve_hostile() as server, client_with(transport) as client:
        with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
            await client.post(server.url + "/drop", content=b"{}")
        assert len(server.requests) == 1
        assert in_limbo(transport) == 0


async def test_concurrent_requests_to_one_host() -> None:
    transport = TrioTransport(allow_private=True)
    async with serve_hostile() as server, client_with(transport) as client:
        statuses: list[int] = []

        async def one(i: int) -> None:
            statuses.append((await client.get(f"{server.url}/c/{i}")).status_code)

        for _ in range(2):
            async with trio.open_nursery() as nursery:
                for i in range(30):
                    nursery.start_soon(one, i)
        assert statuses == [200] * 60
        assert transport.stats.opened == server.connections_opened == 30  # round 2 reused all
        assert transport.pool.idle_count() == 30
        assert in_limbo(transport) == 0


async def test_idle_connections_per_host_are_bounded() -> None:
    transport = TrioTransport(allow_private=True, max_idle_per_host=5)
    async with serve_hostile() as server, client_with(transport) as client:
        async with trio.open_nursery() as nursery:
            for _ in range(20):
                nursery.start_soon(client.get, server.url + "/")
        assert transport.pool.idle_count() == 5
        assert transport.stats.closed == 15
        await server.wait_until(lambda: server.open_connections == 5)


async def test_dns_rebinding_between_check_and_connect_is_blocked() -> None:
    resolver = StaticResolver({"rebind.test": [PUBLIC]})
    transport = TrioTransport(allow_private=False, resolver=resolver)
    async with serve_hostile() as server, client_with(transport) as client:
        url = f"http://rebind.test:{server.port}/hook"
        await check_url(url, allow_private=False, resolver=resolver)  # passes: public answer
        resolver.set("rebind.test", ["127.0.0.1"])  # the attacker's DNS flips to loopback
        with pytest.raises(BlockedTarget) as caught:
            await client.post(url, content=b"{}")
        assert isinstance(caught.value, httpx.ConnectError)
        assert str(caught.value).startswith("url not allowed:")
        assert "loopback" in str(caught.value)
        assert resolver.calls == ["rebind.test", "rebind.test"]
        assert server.connections_opened == 0


async def test_one_bad_answer_among_good_ones_blocks_even_with_private_allowed() -> None:
    resolver = StaticResolver({"mixed.test": ["127.0.0.1", "169.254.169.254"]})
    transport = TrioTransport(allow_private=True, resolver=resolver)
    async with serve_hostile() as server, client_with(transport) as client:
        with pytest.raises(BlockedTarget, match=r"^url not allowed: .*metadata"):
            await client.get(f"http://mixed.test:{server.port}/")
        assert server.connections_opened == 0


@pytest.mark.parametrize(
    "url",
    [
        "http://2130706433:{port}/",
        "http://0x7f.1:{port}/",
        "http://[::ffff:127.0.0.1]:{port}/",
        "http://127.0.0.1:22/",
        "http://user:pw@127.0.0.1:{port}/",
        "http://169.254.169.254/",
    ],
)
async def test_the_transport_itself_refuses_blocked_targets(url: str) -> None:
    transport = TrioTransport(allow_private=False)
    async with serve_hostile() as server, client_with(transport) as client:
        with pytest.raises(BlockedTarget, match=r"^url not allowed: "):
            await client.get(url.format(port=server.port))
        assert server.connections_opened == 0
        assert transport.stats.opened == 0


async def test_connects_to_the_checked_ip_with_the_name_as_host_header() -> None:
    resolver = StaticResolver({"hooks.test": ["127.0.0.1"]})
    transport = TrioTransport(allow_private=True, resolver=resolver)
    async with serve_hostile() as server, client_with(transport) as client:
        response = await client.post(f"http://hooks.test:{server.port}/x?y=1", content=b"{}")
        assert response.status_code == 200
        seen = server.requests[0]
        assert (seen.method, seen.path) == ("POST", "/x?y=1")
        assert seen.headers["host"] == f"hooks.test:{server.port}"


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def server_context(ca: trustme.CA, name: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(name).configure_cert(context)
    return context


def trusting(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


async def test_tls_with_sni_and_verification_against_the_test_ca(ca: trustme.CA) -> None:
    resolver = StaticResolver({"secure.test": ["127.0.0.1"]})
    transport = TrioTransport(allow_private=True, resolver=resolver, ssl_context=trusting(ca))
    async with (
        serve_hostile(ssl_context=server_context(ca, "secure.test")) as server,
        client_with(transport) as client,
    ):
        for _ in range(3):
            response = await client.get(f"https://secure.test:{server.port}/tls")
            assert (response.status_code, response.content) == (200, b"ok")
        assert server.sni == ["secure.test"]
        assert server.requests[0].headers["host"] == f"secure.test:{server.port}"
        assert server.connections_opened == 1  # kept alive over TLS too


async def test_tls_refuses_an_untrusted_certificate(ca: trustme.CA) -> None:
    resolver = StaticResolver({"secure.test": ["127.0.0.1"]})
    transport = TrioTransport(allow_private=True, resolver=resolver)  # system trust store
    async with (
        serve_hostile(ssl_context=server_context(ca, "secure.test")) as server,
        client_with(transport) as client,
    ):
        with pytest.raises(httpx.ConnectError, match="certificate verify failed"):
            await client.get(f"https://secure.test:{server.port}/")
        assert server.requests == []
        assert in_limbo(transport) == 0


async def test_tls_refuses_a_certificate_for_another_name(ca: trustme.CA) -> None:
    resolver = StaticResolver({"other.test": ["127.0.0.1"]})
    transport = TrioTransport(allow_private=True, resolver=resolver, ssl_context=trusting(ca))
    async with (
        serve_hostile(ssl_context=server_context(ca, "secure.test")) as server,
        client_with(transport) as client,
    ):
        with pytest.raises(httpx.ConnectError, match=r"other\.test"):
            await client.get(f"https://other.test:{server.port}/")
        assert server.sni == ["other.test"]
        assert server.requests == []


async def test_responses_without_body_keep_the_connection() -> None:
    transport = TrioTransport(allow_private=True)
    async with serve_hostile() as server, client_with(transport) as client:
        head = await client.head(server.url + "/")
        assert (head.status_code, head.content, head.headers["content-length"]) == (200, b"", "2")
        no_content = await client.get(server.url + "/status/204")
        assert (no_content.status_code, no_content.content) == (204, b"")
        not_modified = await client.get(server.url + "/status/304")
        assert (not_modified.status_code, not_modified.content) == (304, b"")
        assert (await client.get(server.url + "/")).content == b"ok"
        assert server.connections_opened == 1


async def test_chunked_response_is_read_whole_and_the_connection_reused() -> None:
    transport = TrioTransport(allow_private=True)
    async with serve_hostile() as server, client_with(transport) as client:
        response = await client.get(server.url + "/chunked/5")
        assert response.content == b"chunk-0;chunk-1;chunk-2;chunk-3;chunk-4;"
        assert response.headers["transfer-encoding"] == "chunked"
        assert (await client.get(server.url + "/chunked/0")).content == b""
        assert server.connections_opened == 1


async def test_redirects_are_returned_not_followed() -> None:
    transport = TrioTransport(allow_private=True)
    async with serve_hostile() as server, client_with(transport) as client:
        response = await client.get(server.url + "/redirect", follow_redirects=False)
        assert response.status_code == 302
        assert response.headers["location"] == "/redirect"
        assert len(server.requests) == 1


async def test_cancelled_mid_body_the_connection_is_discarded() -> None:
    transport = TrioTransport(allow_private=True)
    async with serve_hostile() as server, client_with(transport) as client:
        assert (await client.get(server.url + "/")).status_code == 200
        got = bytearray()
        with trio.move_on_after(0.3) as scope:
            async with client.stream("GET", server.url + "/slow-body") as response:
                async for chunk in response.aiter_raw():
                    got += chunk
        assert scope.cancelled_caught
        assert len(got) == 1000
        assert transport.pool.idle_count() == 0
        assert in_limbo(transport) == 0
        await server.wait_until(lambda: server.open_connections == 0)
        assert (await client.get(server.url + "/")).content == b"ok"
        assert server.connections_opened == 2


async def test_a_cancelled_read_closes_the_connection_even_if_nobody_closes_the_response() -> None:
    transport = TrioTransport(allow_private=True)
    async with serve_hostile() as server:
        response = await transport.handle_async_request(
            httpx.Request("GET", server.url + "/slow-body")
        )
        assert isinstance(response.stream, httpx.AsyncByteStream)
        with trio.move_on_after(0.3) as scope:
            async for _chunk in response.stream:
                pass
        assert scope.cancelled_caught
        assert transport.stats.opened == transport.stats.closed == 1
        await server.wait_until(lambda: server.open_connections == 0)


async def test_cancelled_before_the_response_head_leaks_nothing() -> None:
    transport = TrioTransport(allow_private=True)
    async with serve_hostile() as server, client_with(transport) as client:
        assert (await client.get(server.url + "/")).status_code == 200
        with trio.move_on_after(0.2) as scope:
            await client.get(server.url + "/hang")
        assert scope.cancelled_caught
        assert transport.stats.opened == transport.stats.closed == 1
        await server.wait_until(lambda: server.open_connections == 0)
        assert (await client.get(server.url + "/")).content == b"ok"
        assert in_limbo(transport) == 0


async def test_a_response_closed_early_is_not_reused() -> None:
    transport = TrioTransport(allow_private=True)
    async with serve_hostile() as server, client_with(transport) as client:
        async with client.stream("GET", server.url + "/big/10000000") as response:
            async for _chunk in response.aiter_raw():
                break
        assert transport.pool.idle_count() == 0
        assert transport.stats.closed == 1
        await server.wait_until(lambda: server.open_connections == 0)


async def test_the_transport_caps_the_body_and_discards_the_connection() -> None:
    transport = TrioTransport(allow_private=True, max_body_bytes=100_000)
    async with serve_hostile() as server, client_with(transport) as client:
        response = await client.get(server.url + "/big/100000000")
        assert len(response.content) == 100_000
        assert response.extensions["runlater_truncated"] is True
        endless = await client.get(server.url + "/endless")
        assert len(endless.content) == 100_000
        assert transport.pool.idle_count() == 0
        assert in_limbo(transport) == 0
        await server.wait_until(lambda: server.open_connections == 0)
        assert server.flood_bytes < 32 * 2**20  # neither body was read to its end


async def test_response_heads_are_bounded() -> None:
    transport = TrioTransport(allow_private=True, max_header_bytes=16 * 1024)
    async with serve_hostile() as server, client_with(transport) as client:
        with pytest.raises(httpx.RemoteProtocolError, match="larger than 16384 bytes"):
            await client.get(server.url + "/huge-headers")
        assert in_limbo(transport) == 0
        await server.wait_until(lambda: server.open_connections == 0)
        # It stopped reading at the limit (what the server got out is that plus socket buffers).
        assert server.flood_bytes < 16 * 2**20


async def test_httpx_read_timeout_is_honoured() -> None:
    transport = TrioTransport(allow_private=True)
    async with serve_hostile() as server, client_with(transport) as client:
        started = trio.current_time()
        with pytest.raises(httpx.ReadTimeout):
            await client.get(server.url + "/hang", timeout=httpx.Timeout(5.0, read=0.2))
        assert trio.current_time() - started < 2.0
        assert in_limbo(transport) == 0


async def test_bodies_are_passed_through_raw() -> None:
    """No decompression in the transport: what the server sent is what the caller reads."""
    transport = TrioTransport(allow_private=True)
    async with serve_hostile() as server, client_with(transport) as client:
        async with client.stream("GET", server.url + "/chunked/2") as response:
            raw = b"".join([chunk async for chunk in response.aiter_raw()])
        assert raw == b"chunk-0;chunk-1;"


async def test_closing_the_transport_closes_idle_connections() -> None:
    transport = TrioTransport(allow_private=True)
    async with serve_hostile() as server:
        async with client_with(transport) as client:
            await client.get(server.url + "/")
            assert transport.pool.idle_count() == 1
        assert transport.pool.idle_count() == 0
        assert transport.stats.opened == transport.stats.closed == 1
        await server.wait_until(lambda: server.open_connections == 0)


async def test_a_delivery_carries_no_cookie_from_one_response_to_the_next() -> None:
    """Deliveries go to the transport without httpx's client layer, so no cookie jar: a
    Set-Cookie from one tenant's target never rides along on the next request to that host
    (httpx's client with its default jar would send it)."""
    async with serve_hostile() as server:
        async with httpx.AsyncClient(transport=TrioTransport(allow_private=True)) as plain:
            await plain.get(server.url + "/set-cookie")
            await plain.get(server.url + "/next")
        assert server.requests[-1].headers.get("cookie") == "session=tenant-a-secret"
        async with TrioTransport(allow_private=True) as transport:
            deliverer = Deliverer(transport)
            first = await deliverer.deliver(claimed_execution(server.url + "/set-cookie"))
            assert (first.response_headers or {})["set-cookie"].startswith("session=")
            await deliverer.deliver(claimed_execution(server.url + "/next"))
        assert "cookie" not in server.requests[-1].headers


def test_server_helper_has_a_url() -> None:
    assert HostileServer().url.startswith("http://")
