"""Bearer API-key authentication: every ``/api/v1`` request acts inside one organization."""

from __future__ import annotations

from uuid import UUID

from quart import current_app, g, request

from runlater import apikeys
from runlater.web.errors import ApiError

PUBLIC_PATHS = frozenset({"/api/v1/openapi.json", "/api/v1/docs"})


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"})


async def authenticate() -> None:
    # Read the whole body before any early answer: hypercorn leaves a keep-alive connection
    # hanging when the response completes before the request body has arrived (seen as a
    # client timeout right after fast 401/503 answers).
    await request.get_data(cache=True)
    if request.path in PUBLIC_PATHS:
        return
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized("missing API key: send 'Authorization: Bearer <key>'")
    parts = apikeys.split(token.strip())
    if parts is None:
        raise _unauthorized("malformed API key")
    owner = await current_app.config["STORE"].find_api_key(parts[0])
    if owner is None or owner.revoked or not apikeys.secret_matches(parts[1], owner.key_hash):
        raise _unauthorized("unknown or revoked API key")
    g.org_id = owner.organization_id
    g.api_key_id = owner.key_row_id


def org_id() -> UUID:
    return g.org_id
