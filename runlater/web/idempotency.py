"""``Idempotency-Key`` on mutating API calls: the first answer is kept 24 h and replayed.

Per (organization, key): the request's own transaction takes the key (``store/transaction.py``),
and the answer is stored in that transaction, together with what the request changed — a 4xx
answer too (without any change). A repeat of the same request gets the stored answer without
acting again; a repeat while the first still runs gets 409 ``idempotency_conflict``; the same
key with another method, path, query or body gets 422 ``idempotency_mismatch``. A 5xx (or 429)
answer is not kept and nothing the request did stays: the client may retry. A key is never
left taken by a request that failed: its transaction ended, so its lock is gone; a node that
vanished mid-request frees it within the database's idle-in-transaction limit (5 s by
default). Records older than 24 h are replaced by the next request with the key.
"""

from __future__ import annotations

import hashlib
from typing import cast

from quart import Response, g, request

from runlater.store.transaction import IdempotencyKey, KeyReplay, StoredAnswer
from runlater.web.errors import ApiError

HEADER = "Idempotency-Key"
MAX_KEY_CHARS = 255
MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
KEPT_HEADERS = ("Content-Type", "Location")


def conflict() -> ApiError:
    return ApiError(
        409,
        "idempotency_conflict",
        "a request with this Idempotency-Key is still in progress; retry later",
    )


def mismatch() -> ApiError:
    return ApiError(
        422,
        "idempotency_mismatch",
        f"this {HEADER} was used with a different request (method, path or body)",
    )


def request_hash(method: str, path: str, body: bytes) -> str:
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode()):
        digest.update(part)
        digest.update(b"\n")
    digest.update(body)
    return digest.hexdigest()


async def key_of_request() -> IdempotencyKey | None:
    """The request's Idempotency-Key (None without the header); 400 when malformed. Needs
    the authenticated organization (``g.org_id``)."""
    key = request.headers.get(HEADER)
    if key is None or request.method not in MUTATING:
        return None
    if not key or len(key) > MAX_KEY_CHARS:
        raise ApiError(400, "bad_request", f"{HEADER} must be 1 to {MAX_KEY_CHARS} characters long")
    body = cast(bytes, await request.get_data(cache=True, as_text=False))
    # The query string is part of what was asked (PUT /sync?dry_run=true is not PUT /sync).
    target = request.path
    if request.query_string:
        target = f"{target}?{request.query_string.decode('latin-1')}"
    return IdempotencyKey(
        g.org_id, key, request.method, request.path, request_hash(request.method, target, body)
    )


def replay(exc: KeyReplay) -> Response:
    """The stored answer of a key, as a response (marked for the other hooks: nothing new
    happened, so nothing is audited or stored again)."""
    g.idempotency_replayed = True
    record = exc.record
    response = Response(bytes(record["response_body"]), status=record["response_status"])
    for name, value in (record["response_headers"] or {}).items():
        response.headers[name] = value
    return response


async def answer_to_keep(response: Response) -> StoredAnswer | None:
    """What to store for the key: every answer but a 5xx or 429 (those are retried)."""
    status = response.status_code
    if status >= 500 or status == 429:
        return None
    headers = {n: response.headers[n] for n in KEPT_HEADERS if n in response.headers}
    return StoredAnswer(status, await response.get_data(as_text=False), headers)
