"""Live events over websockets (docs/api.md, "Live events"): ``/api/v1/live`` for programs
(Bearer API key on the upgrade request) and ``/live`` for the dashboard's pages (the session
cookie, and an ``Origin`` that is the base URL's).

Frames are JSON text: first ``{"type": "hello", "org_id", "node"}``, then one event each, of
the caller's organization only, optionally only of ``?types=``. A connection that falls behind
(its buffer in the hub is full) is sent ``{"type": "overflow"}`` and closed with 1013; the
client reconnects and reads the state again. A revoked key's connections close within 1 s
(the key is checked again every ``RECHECK_S`` through the key cache, whose entries live under
a second; once per key for all the node's connections that hold it). Each node admits
``RUNLATER_LIVE_MAX_PER_ORG`` connections per organization; more are refused with 429 before
the upgrade, with the reason.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

import trio
from quart import Quart, websocket

from runlater.domain.people import token_hash
from runlater.events import EVENT_TYPES, Event, Hub
from runlater.web import serialize
from runlater.web.auth import key_owner
from runlater.web.context import services
from runlater.web.errors import ApiError, error_response
from runlater.web.pages import guard

RECHECK_S = 0.5  # an API key: through the key cache, about one lookup per key and second
SESSION_RECHECK_S = 5.0  # a session cookie: one query per connection each time
CLOSE_OVERFLOW = 1013  # try again later
OVERFLOW_GRACE_S = 1.0
CLOSE_POLICY = 1008  # the credentials are gone


def _types() -> frozenset[str]:
    raw = websocket.args.get("types", "")
    types = frozenset(t.strip() for t in raw.split(",") if t.strip())
    if unknown := sorted(types - EVENT_TYPES):
        raise ApiError(
            400,
            "validation_error",
            f"unknown event types {', '.join(unknown)}; "
            f"choose from {', '.join(sorted(EVENT_TYPES))}",
        )
    return types


_frames: OrderedDict[int, str] = OrderedDict()
FRAME_CACHE = 1024  # an event's frame is made once for all its subscribers on this node


def frame(event_id: int, event: Event) -> str:
    found = _frames.get(event_id)
    if found is None:
        found = _frames[event_id] = _frame(event_id, event)
        if len(_frames) > FRAME_CACHE:
            _frames.popitem(last=False)
    return found


def _frame(event_id: int, event: Event) -> str:
    data = event.data
    if event.type in ("task.created", "task.updated"):
        data = serialize.task(data)
    else:
        data = {k: serialize.value(v) for k, v in data.items()}
    return json.dumps(
        {"type": event.type, "id": str(event_id), "at": serialize.ts(event.at), "data": data},
        separators=(",", ":"),
    )


def _refuse_if_full(hub: Hub, org_id: UUID) -> None:
    limit = services().settings.live_max_per_org
    if hub.count(org_id) >= limit:
        raise ApiError(
            429,
            "rate_limited",
            f"this node already holds {limit} live connections of your organization "
            "(RUNLATER_LIVE_MAX_PER_ORG); close one or connect to another node",
            headers={"Retry-After": "5"},
        )


async def _serve(
    org_id: UUID,
    types: frozenset[str],
    credential: str,
    still_allowed: Callable[[], Awaitable[bool]],
    recheck_s: float,
) -> None:
    """Accept, say hello, then forward events until the client leaves, falls behind or loses
    its right to listen (``still_allowed()`` turns False; checked once per ``credential`` and
    period for all the node's connections that hold it, see ``rights.py``)."""
    hub = services().hub
    sub = hub.subscribe(org_id, types)
    try:
        await websocket.accept()
        node = services().settings.node_name or ""
        await websocket.send(json.dumps({"type": "hello", "org_id": str(org_id), "node": node}))
        async with trio.open_nursery() as nursery:

            async def drain_client() -> None:
                while True:  # frames from the client are not commands: read and drop them
                    await websocket.receive()

            async def watch_rights() -> None:
                await services().rights.until_revoked(credential, still_allowed, recheck_s)
                await websocket.close(CLOSE_POLICY, "credentials revoked")
                nursery.cancel_scope.cancel()

            async def watch_overflow() -> None:
                await sub.overflowed.wait()
                nursery.cancel_scope.cancel()  # stop forwarding: the stream has a gap now
                # A client that reads nothing never takes this frame: do not wait for it.
                with trio.move_on_after(OVERFLOW_GRACE_S, shield=True):
                    await websocket.send(json.dumps({"type": "overflow"}))
                    await websocket.close(CLOSE_OVERFLOW, "fell behind: reconnect and read again")

            nursery.start_soon(drain_client)
            nursery.start_soon(watch_rights)
            nursery.start_soon(watch_overflow)
            send = websocket.send  # the bound method: not the context proxy per frame
            async for event_id, event in sub.events:
                await send(frame(event_id, event))
    finally:
        hub.unsubscribe(sub)


async def api_live() -> Any:
    try:
        header = websocket.headers.get("Authorization", "")
        owner = await key_owner(header)
        types = _types()
        _refuse_if_full(services().hub, owner.organization_id)
    except ApiError as exc:
        return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)

    async def still_allowed() -> bool:
        try:
            await key_owner(header)
        except ApiError:
            return False
        return True

    credential = "key " + token_hash(header)  # the groups keep no secret
    await _serve(owner.organization_id, types, credential, still_allowed, RECHECK_S)
    return None


async def page_live() -> Any:
    expected = guard.origin_of(services().settings.public_base_url)
    if (websocket.headers.get("Origin") or "").rstrip("/") != expected:
        return error_response(403, "forbidden", "this websocket is for the dashboard's pages")
    token = websocket.cookies.get(guard.SESSION_COOKIE, "")
    row = await services().people.session(token) if token and len(token) <= 200 else None
    if row is None or row["role"] is None:
        return error_response(401, "unauthorized", "sign in first")
    try:
        types = _types()
        _refuse_if_full(services().hub, row["organization_id"])
    except ApiError as exc:
        return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)
    org_id = row["organization_id"]

    async def still_allowed() -> bool:
        found = await services().people.session(token)
        return (
            found is not None and found["organization_id"] == org_id and found["role"] is not None
        )

    credential = f"session {org_id} {token_hash(token)}"
    await _serve(org_id, types, credential, still_allowed, SESSION_RECHECK_S)
    return None


def install(app: Quart) -> None:
    app.add_websocket("/api/v1/live", "api_live", api_live)
    app.add_websocket("/live", "page_live", page_live)
