"""``/ping/{token}``: the public ping endpoints of heartbeat monitors (no API key).

The same shapes as Healthchecks.io's ping API, so cron wrappers and clients written for it
work unchanged: GET, POST or HEAD ``/ping/T`` (success), ``/start``, ``/fail``,
``/{exit status}`` (0 success, 1-255 failure, another number 400) and ``/log`` (recorded only);
``?rid=<uuid>`` pairs a start with its finish. The answer is ``200 text/plain "OK"``; an
unknown token ``404 "not found"``; a disabled monitor ``410``; too many pings for one token
``429 "rate limited"``. The body (up to ``MAX_PING_BYTES`` of it) is stored with the ping.

A ping is one statement and never waits on the Monitor (``MonitorService.ping``).
"""

from __future__ import annotations

from typing import Any, cast
from uuid import UUID

from quart import Blueprint, Response, request
from quart_schema import hide

from runlater.domain.monitors import BadPing, parse_ping_suffix, parse_token
from runlater.store.monitors import Ping
from runlater.web.context import services
from runlater.web.ratelimit import Seconds, TokenBuckets, retry_after

MAX_PING_BYTES = 100 * 1024  # stored; the rest of a longer body is dropped (body_truncated)
MAX_PING_REQUEST_BYTES = 1024 * 1024  # a longer request is refused with 413
PING_METHODS = ["GET", "POST", "HEAD"]


def _text(body: str, status: int, headers: dict[str, str] | None = None) -> Response:
    response = Response(body, status=status, content_type="text/plain; charset=utf-8")
    response.headers.update(headers or {})
    # Pings come from scripts and cron boxes; they are never cached.
    response.headers["Cache-Control"] = "no-store"
    return response


def install(app: Any, now: Seconds) -> None:
    """Register the ping routes on ``app``; ``now`` is the rate limit's elapsed-time source."""
    per_token = app.config["RUNLATER_SERVICES"].settings.ping_rate_limit_per_token
    buckets = TokenBuckets(per_token, now) if per_token else None
    bp = Blueprint("ping", __name__)

    async def ping(token: str, suffix: str | None) -> Response:
        try:
            wanted = parse_ping_suffix(suffix)
        except BadPing as exc:
            return _text(f"invalid exit status: {exc}", 400)
        monitor_token = parse_token(token)
        if wanted is None or monitor_token is None:
            return _text("not found", 404)
        rid: UUID | None = None
        raw_rid = request.args.get("rid")
        if raw_rid:
            rid = parse_token(raw_rid)
            if rid is None:
                return _text("invalid rid: it must be a UUID", 400)
        if buckets is not None:
            wait_s = buckets.take(monitor_token)
            if wait_s:
                return _text("rate limited", 429, {"Retry-After": retry_after(wait_s)})
        body = cast(bytes, await request.get_data(cache=True, as_text=False))
        svc = services()
        answer = await svc.monitors.ping(
            Ping(
                token=monitor_token,
                kind=wanted.kind,
                exit_status=wanted.exit_status,
                rid=rid,
                at=svc.clock.now(),
                method=request.method,
                source_ip=request.remote_addr,
                user_agent=(request.headers.get("User-Agent") or "")[:500] or None,
                body=body[:MAX_PING_BYTES],
                body_truncated=len(body) > MAX_PING_BYTES,
            )
        )
        if answer == "not_found":
            return _text("not found", 404)
        if answer == "disabled":
            return _text("disabled", 410)
        return _text("OK", 200)

    @bp.route("/ping/<token>", methods=PING_METHODS)
    @hide
    async def ping_success(token: str) -> Response:
        return await ping(token, None)

    @bp.route("/ping/<token>/<suffix>", methods=PING_METHODS)
    @hide
    async def ping_suffix(token: str, suffix: str) -> Response:
        return await ping(token, suffix)

    app.register_blueprint(bp)
