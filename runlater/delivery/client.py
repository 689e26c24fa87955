"""Send one execution's HTTP request and describe what happened.

The outbound transport is injected (the node gives its ``TrioTransport``, which checks every
address it connects to). The whole attempt — connect, send, receive — runs under one
deadline: the task's ``timeout_ms``. At most ``MAX_BODY_BYTES`` of the response are read.
"""

from __future__ import annotations

import json
import time
from functools import lru_cache

import httpx
import trio

from runlater import __version__
from runlater.delivery.assertions import judge
from runlater.delivery.signing import signature_headers, upstash_signature
from runlater.delivery.ssrf import UrlNotAllowed
from runlater.delivery.transport import BlockedTarget
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


@lru_cache(maxsize=4096)
def _parsed_url(url: str) -> httpx.URL:
    """Tasks call the same URLs again and again; httpx.URL is immutable."""
    return httpx.URL(url)


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
        self.status = "failed"  # failed | timeout | responded (then judged: success | failed)
        self.status_code: int | None = None
        self.duration_ms = 0
        self.response_body: str | None = None
        self.response_headers: dict[str, str] | None = None
        self.request_headers: dict[str, str] = {}
        self.error: str | None = None


JSON_CONTENT_TYPE = "application/json"
TEXT_CONTENT_TYPE = "text/plain; charset=utf-8"
BINARY_CONTENT_TYPE = "application/octet-stream"


def body_content_type(body: str) -> str:
    """The Content-Type of a task body whose headers set none: ``application/json`` when it is
    a JSON object or array (a body given as JSON is stored as its JSON text), else text."""
    if body.lstrip()[:1] in ("{", "["):
        try:
            json.loads(body)
        except ValueError:
            return TEXT_CONTENT_TYPE
        return JSON_CONTENT_TYPE
    return TEXT_CONTENT_TYPE


def request_headers(claimed: ClaimedExecution, body: bytes) -> dict[str, str]:
    """The task's headers plus Runlater's own; Runlater's win over the task's. A body gets a
    Content-Type (``body_content_type``) unless the task's headers set one."""
    now = int(time.time())
    ours = {
        "User-Agent": USER_AGENT,
        "X-Runlater-Task-Id": str(claimed.task_id),
        "X-Runlater-Execution-Id": str(claimed.id),
        "X-Runlater-Attempt": str(claimed.attempt),
        # webhook-id is the retry chain's first execution: stable across retries and rescues.
        **signature_headers(claimed.signing_secrets, str(claimed.root_execution_id), now, body),
    }
    if claimed.qstash_signing_key is not None:
        ours["Upstash-Signature"] = upstash_signature(
            claimed.qstash_signing_key, claimed.url, body, now
        )
    lowered = {k.lower() for k in ours}
    headers = {
        str(k): str(v) for k, v in (claimed.headers or {}).items() if str(k).lower() not in lowered
    }
    headers.update(ours)
    if not any(k.lower() == "content-type" for k in headers):
        if claimed.body is not None:
            headers["Content-Type"] = body_content_type(claimed.body)
        elif claimed.body_bytes is not None:
            headers["Content-Type"] = BINARY_CONTENT_TYPE
    # Raw bytes are stored: ask for no compression (no decompression bombs to defuse).
    if not any(k.lower() == "accept-encoding" for k in headers):
        headers["Accept-Encoding"] = "identity"
    return headers


def request_body(claimed: ClaimedExecution) -> bytes | None:
    """The bytes a delivery sends: a binary body as stored, a text body as UTF-8, or none."""
    if claimed.body_bytes is not None:
        return claimed.body_bytes
    return claimed.body.encode("utf-8") if claimed.body is not None else None


class Sender:
    """One bounded HTTP exchange: a deadline over connect + send + receive, at most
    ``MAX_BODY_BYTES`` of the response read, no redirects followed. Never raises for what the
    target does; the outcome says what happened. Shared by deliveries and callbacks."""

    def __init__(self, transport: httpx.AsyncBaseTransport) -> None:
        """``transport`` is called directly, without httpx's client layer (its auth, redirect
        and cookie plumbing measured ~15 % of node CPU and none of it applies; no cookie jar
        means no ``Set-Cookie`` of one tenant's target rides along on another's request). It
        must check each address it connects to: ``TrioTransport`` does (the SSRF guard)."""
        self.transport = transport

    async def send(
        self, attempt: Attempt, method: str, url: str, content: bytes | None, timeout_ms: int
    ) -> None:
        """Fill ``attempt`` (whose request_headers are set) with what the target answered."""
        started = time.perf_counter()
        timeout_s = timeout_ms / 1000
        try:
            with trio.fail_after(timeout_s):
                await self._exchange(attempt, method, url, content, timeout_s)
        except trio.TooSlowError:
            attempt.status = "timeout"
            attempt.error = f"no complete response within {timeout_ms} ms"
        except UrlNotAllowed as exc:
            attempt.error = f"url not allowed: {exc}"
        except BlockedTarget as exc:  # the transport's connect-time SSRF check
            attempt.error = str(exc)
        except (httpx.HTTPError, httpx.InvalidURL, OSError, ValueError) as exc:
            # ValueError covers what httpx refuses to encode (e.g. a non-ASCII header value
            # stored before validation was stricter): a failed attempt, never a worker crash.
            attempt.error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        attempt.duration_ms = round((time.perf_counter() - started) * 1000)

    async def _exchange(
        self, attempt: Attempt, method: str, url: str, content: bytes | None, timeout_s: float
    ) -> None:
        request = httpx.Request(
            method,
            _parsed_url(url),
            headers=attempt.request_headers,
            content=content,
            extensions={"timeout": httpx.Timeout(timeout_s).as_dict()},
        )
        response = await self.transport.handle_async_request(request)
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
        attempt.status = "responded"


class Deliverer:
    """Sends one execution's request (signed) and judges the response."""

    def __init__(self, transport: httpx.AsyncBaseTransport) -> None:
        self.sender = Sender(transport)

    async def deliver(self, claimed: ClaimedExecution) -> Attempt:
        attempt = Attempt()
        content = request_body(claimed)
        attempt.request_headers = request_headers(claimed, content or b"")
        await self.sender.send(attempt, claimed.method, claimed.url, content, claimed.timeout_ms)
        if attempt.status == "responded":
            assert attempt.status_code is not None and attempt.response_body is not None
            attempt.error = judge(
                attempt.status_code,
                attempt.response_body,
                claimed.expected_status_codes,
                claimed.expected_body_pattern,
            )
            attempt.status = "success" if attempt.error is None else "failed"
        return attempt
