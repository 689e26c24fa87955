"""``Idempotency-Key`` on mutating API calls: the first response is kept 24 h and replayed.

Per (organization, key): the first request claims the key (one insert), runs, and its response
(status, body, a few headers) is stored — a 4xx too. A repeat of the same request gets the
stored response without acting again; a repeat while the first still runs gets 409
``idempotency_conflict``; the same key with another method, path or body gets 422
``idempotency_mismatch``. A 5xx (or 429) is not kept: the key is released so the client may
retry. Records older than 24 h are replaced by the next request with the key. The response
is stored before it goes out; calls finishing together share one UPDATE (group commit).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from typing import Any

import trio
from quart import Response, current_app, g, request

from runlater.errors import Conflict, StoreError
from runlater.store.access import FinishedKey
from runlater.web.errors import ApiError
from runlater.web.group_commit import GroupCommit

log = logging.getLogger("runlater.web.idempotency")

HEADER = "Idempotency-Key"
MAX_KEY_CHARS = 255
MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
KEPT_HEADERS = ("Content-Type", "Location")


def _conflict() -> ApiError:
    return ApiError(
        409,
        "idempotency_conflict",
        "a request with this Idempotency-Key is still in progress; retry later",
    )


def request_hash(method: str, path: str, body: bytes) -> str:
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode()):
        digest.update(part)
        digest.update(b"\n")
    digest.update(body)
    return digest.hexdigest()


async def begin() -> Response | None:
    """``before_request`` hook of the API blueprint, after authentication."""
    g.idempotency_key = None
    g.idempotency_replayed = False
    key = request.headers.get(HEADER)
    if key is None or request.method not in MUTATING or "org_id" not in g:
        return None
    if not key or len(key) > MAX_KEY_CHARS:
        raise ApiError(400, "bad_request", f"{HEADER} must be 1 to {MAX_KEY_CHARS} characters long")
    body = await request.get_data(cache=True)
    # The query string is part of what was asked (PUT /sync?dry_run=true is not PUT /sync).
    target = request.path
    if request.query_string:
        target = f"{target}?{request.query_string.decode('latin-1')}"
    fingerprint = request_hash(request.method, target, body)
    store = current_app.config["STORE"]
    try:
        row = await store.claim_idempotency_key(
            g.org_id, key, request.method, request.path, fingerprint
        )
    except Conflict:
        raise _conflict() from None
    if row is None:
        g.idempotency_key = key  # ours: the response is stored by ``finish``
        return None
    if row["request_hash"] != fingerprint:
        raise ApiError(
            422,
            "idempotency_mismatch",
            f"this {HEADER} was used with a different request (method, path or body)",
        )
    if row["status"] != "done":
        raise _conflict()
    g.idempotency_replayed = True  # for other after_request hooks (e.g. the audit log)
    response = Response(bytes(row["response_body"]), status=row["response_status"])
    for name, value in (row["response_headers"] or {}).items():
        response.headers[name] = value
    return response


def _finishes(store: Any) -> GroupCommit[FinishedKey]:
    """The app's group commit of finished keys (made on first use)."""
    group = current_app.config.get("IDEMPOTENCY_FINISHES")
    if group is None:
        group = current_app.config["IDEMPOTENCY_FINISHES"] = GroupCommit(
            store.finish_idempotency_keys
        )
    return group


async def finish(response: Response) -> Response:
    """``after_request`` hook: keep the response of a claimed key, or release the key."""
    key = g.get("idempotency_key")
    if key is None:
        return response
    g.idempotency_key = None
    store = current_app.config["STORE"]
    status = response.status_code
    with trio.CancelScope(shield=True):
        try:
            if status >= 500 or status == 429:
                await store.release_idempotency_key(g.org_id, key)
            else:
                headers = {n: response.headers[n] for n in KEPT_HEADERS if n in response.headers}
                body = await response.get_data()
                # Stored before the response goes out; concurrent calls share one UPDATE.
                await _finishes(store).add(FinishedKey(g.org_id, key, status, body, headers))
        except StoreError as exc:
            log.error("idempotency key not recorded status=%s error=%s", status, exc)
            with contextlib.suppress(StoreError):
                await store.release_idempotency_key(g.org_id, key)
    return response


async def abandon(exc: BaseException | None = None) -> None:
    """``teardown_request`` hook: a claimed key whose response was never made is released."""
    key = g.get("idempotency_key")
    if key is None:
        return
    g.idempotency_key = None
    with trio.CancelScope(shield=True):
        try:
            await current_app.config["STORE"].release_idempotency_key(g.org_id, key)
        except StoreError as err:
            log.error("idempotency key not released error=%s", err)
