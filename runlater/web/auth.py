"""Bearer API-key authentication: every ``/api/v1`` request acts inside one organization.

Key lookups are cached in the process (``runlater.web.keycache``) for less than 1 s, counted from
the moment the lookup *started*: a revocation committed at time r is seen by every lookup that
starts after r, so on every node no request arriving at r + 1 s or later is admitted with the
revoked key. The node that revokes a key forgets its cache at once (``forget_on_revoke``).
Only keys that exist are cached (an unknown key id costs a lookup each time — the per-address
rate limit bounds that), and at most 10,000 of them.

Each lookup (about once a second per key and node while it is in use) also marks the key's
``last_used_at``, at most once a minute (see ``authenticate_api_key`` in ``orgs.sql``).
"""

from __future__ import annotations

from uuid import UUID

from quart import Response, g, request

from runlater import apikeys
from runlater.store.records import ApiKeyOwner
from runlater.web.context import services
from runlater.web.errors import ApiError
from runlater.web.transaction import after_commit

PUBLIC_PATHS = frozenset({"/api/v1/openapi.json", "/api/v1/docs"})
# The route that revokes keys (runlater/web/api/keys.py): after it, this node's cache is dropped.
REVOKE_ENDPOINT = "api.api_keys.revoke_api_key"


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"})


async def _owner(key_id: str, secret: str) -> ApiKeyOwner | None:
    cache = services().api_keys
    owner = cache.get(key_id)
    if owner is None:
        started = cache.now()
        owner = await services().store.authenticate_api_key(key_id, apikeys.hash_secret(secret))
        if owner is not None:
            cache.put(key_id, owner, started)
    return owner


async def key_owner(header: str) -> ApiKeyOwner:
    """The owner of a valid, unrevoked key in an ``Authorization`` header; raises ApiError
    401 otherwise (also for the live websocket, where no ``request`` exists)."""
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized("missing API key: send 'Authorization: Bearer <key>'")
    parts = apikeys.split(token.strip())
    if parts is None:
        raise _unauthorized("malformed API key")
    owner = await _owner(*parts)
    if owner is None or owner.revoked or not apikeys.secret_matches(parts[1], owner.key_hash):
        raise _unauthorized("unknown or revoked API key")
    return owner


async def authenticate() -> None:
    # Read the whole body before any early answer: hypercorn leaves a keep-alive connection
    # hanging when the response completes before the request body has arrived (seen as a
    # client timeout right after fast 401/503 answers).
    await request.get_data(cache=True)
    if request.path in PUBLIC_PATHS:
        return
    owner = await key_owner(request.headers.get("Authorization", ""))
    g.org_id = owner.organization_id
    g.api_key_id = owner.key_row_id


async def forget_on_revoke(response: Response) -> Response:
    """``after_request`` hook: a key revoked through this node stops working here at once
    (once the revocation is committed: a lookup between a clear and the commit would put
    the key back into the cache)."""
    if request.endpoint == REVOKE_ENDPOINT and response.status_code < 300:
        after_commit(services().api_keys.clear)
    return response


def org_id() -> UUID:
    return g.org_id
