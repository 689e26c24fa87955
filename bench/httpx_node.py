"""``python -m bench.httpx_node serve``: the benchmark's baseline node, not for use.

Runlater as ``runlater serve`` runs it, with one difference: deliveries and callbacks go through
httpx's default transport (httpcore) instead of Runlater's own. httpx's transport does not check
the addresses it connects to, so each request's URL is checked before it is sent
(``PrecheckTransport``) — the same guard, at another moment. ``python -m bench --transports
runlater,httpx`` compares the two.
"""

from __future__ import annotations

import sys

import httpx

from runlater.cli import main
from runlater.config import Settings
from runlater.delivery.ssrf import check_url


class PrecheckTransport(httpx.AsyncBaseTransport):
    """``inner`` with the SSRF check before each request."""

    def __init__(self, inner: httpx.AsyncBaseTransport, *, allow_private: bool) -> None:
        self.inner = inner
        self.allow_private = allow_private

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await check_url(str(request.url), allow_private=self.allow_private)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def httpx_outbound(settings: Settings) -> httpx.AsyncBaseTransport:
    limits = httpx.Limits(
        max_connections=settings.max_workers * 2, max_keepalive_connections=settings.max_workers
    )
    inner = httpx.AsyncHTTPTransport(limits=limits)
    return PrecheckTransport(inner, allow_private=settings.allow_private_targets)


if __name__ == "__main__":
    sys.exit(main(outbound=httpx_outbound))
