"""Send one execution's HTTP request and describe what happened.

The httpx client is injected so the transport can be swapped (the hardened trio transport of
the delivery-path work plugs in here). The whole attempt — connect, send, receive — runs under
one deadline: the task's ``timeout_ms``. At most ``MAX_BODY_BYTES`` of the response are read.
"""

from __future__ import annotations

import time

import httpx
import trio

from runlater import __version__
from runlater.delivery.ssrf import UrlNotAllowed, check_url
from runlater.store.records import ClaimedExecution

MAX_BODY_BYTES = 256 * 1024
USER_AGENT = f"Runlater/{__version__}"


def body_text(raw: bytes) -> str:
    """Stored form of a response body: UTF-8 with replacement, NUL -> U+FFFD, ≤ 256 KiB."""
    text = raw[:MAX_BODY_BYTES].decode("utf-8", errors="replace").replace("\x00", "\ufffd")
    encoded = text.encode("utf-8")
    if len(encoded) > MAX_BODY_BYTES:  # replacement chars are 3 bytes: cut on a char boundary
        text = encoded[:MAX_BODY_BYTES].decode("utf-8", errors="ignore")
    return text


class Attempt:
    """What one delivery attempt produced (before retry policy and recording)."""

    __slots__ = (
        "duration_ms",
        "error",
        "request_headers",
        "response_body",
        "response_headers",
        "status",
        "status_code",
    )

    def __init__(self) -> None:
        self.status = "failed"
        self.status_code: int | None = None
        self.duration_ms = 0
        self.response_body: str | None = None
        self.response_headers: dict[str, str] | None = None
        self.request_headers: dict[str, str] = {}
        self.error: str | None = None


def request_headers(claimed: ClaimedExecution) -> dict[str, str]:
    headers = {str(k): str(v) for k, v in (claimed.headers or {}).items()}
    headers["User-Agent"] = USER_AGENT
    # Raw bytes are stored: ask for no compression (no decompression bombs to defuse).
    if not any(k.lower() == "accept-encoding" for k in headers):
        headers["Accept-Encoding"] = "identity"
    headers["X-Runlater-Task-Id"] = str(claimed.task_id)
    headers["X-Runlater-Execution-Id"] = str(claimed.id)
    headers["X-Runlater-Attempt"] = str(claimed.attempt)
    headers["webhook-id"] = str(claimed.root_execution_id)
    return headers


class Deliverer:
    def __init__(self, client: httpx.AsyncClient, *, allow_private_targets: bool) -> None:
        self.client = client
        self.allow_private_targets = allow_private_targets

    async def deliver(self, claimed: ClaimedExecution) -> Attempt:
        attempt = Attempt()
        attempt.request_headers = request_headers(claimed)
        started = time.perf_counter()
        timeout_s = claimed.timeout_ms / 1000
        try:
            with trio.fail_after(timeout_s):
                await check_url(claimed.url, allow_private=self.allow_private_targets)
                await self._send(claimed, attempt, timeout_s)
        except trio.TooSlowError:
            attempt.status = "timeout"
            attempt.error = f"no complete response within {claimed.timeout_ms} ms"
        except UrlNotAllowed as exc:
            attempt.error = f"url not allowed: {exc}"
        except (httpx.HTTPError, OSError, ValueError) as exc:
            # ValueError covers what httpx refuses to encode (e.g. a non-ASCII header value
            # stored before validation was stricter): a failed attempt, never a worker crash.
            attempt.error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        attempt.duration_ms = round((time.perf_counter() - started) * 1000)
        return attempt

    async def _send(self, claimed: ClaimedExecution, attempt: Attempt, timeout_s: float) -> None:
        body = claimed.body.encode("utf-8") if claimed.body is not None else None
        request = self.client.build_request(
            claimed.method,
            claimed.url,
            headers=attempt.request_headers,
            content=body,
            timeout=httpx.Timeout(timeout_s),
        )
        response = await self.client.send(request, stream=True, follow_redirects=False)
        try:
            raw = bytearray()
            async for chunk in response.aiter_raw():
                raw += chunk
                if len(raw) >= MAX_BODY_BYTES:
                    break
        finally:
            await response.aclose()
        attempt.status_code = response.status_code
        attempt.response_headers = dict(response.headers)
        attempt.response_body = body_text(bytes(raw))
        attempt.status = "success" if 200 <= response.status_code < 300 else "failed"
        if attempt.status == "failed":
            attempt.error = f"HTTP {response.status_code}"
