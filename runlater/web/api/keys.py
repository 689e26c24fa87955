"""``/api/v1/api-keys``: list, create (the full key is shown once) and revoke the org's keys."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, jsonify, request
from quart_schema import document_querystring, document_request, document_response

from runlater import apikeys
from runlater.domain.keys import MAX_NAME, clean_key_name
from runlater.schemas.common import Data, Page, PageQuery
from runlater.schemas.keys import ApiKey, ApiKeyCreated, ApiKeyCreateRequest
from runlater.schemas.unknown import unknown_fields
from runlater.web import openapi, serialize
from runlater.web.api.common import json_body, page, pagination, parse_id
from runlater.web.auth import org_id
from runlater.web.context import services
from runlater.web.errors import validation_error

bp = Blueprint("api_keys", __name__)

API_KEY_FIELDS = ("id", "name", "key_id", "last_used_at", "revoked_at", "inserted_at")


def _store() -> Any:
    return services().store


def _key(row: dict[str, Any]) -> dict[str, Any]:
    """The public view of a key: never its hash or secret."""
    return serialize.pick(row, API_KEY_FIELDS)


def _parse_name(payload: dict[str, Any]) -> str | None:
    fields = payload["api_key"] if set(payload) == {"api_key"} else payload
    if not isinstance(fields, dict):
        raise validation_error({"api_key": ["must be an object"]})
    if unknown := unknown_fields(fields, {"name"}):
        raise validation_error(unknown)
    name = fields.get("name")
    if name == "":  # the API refuses an empty name (a form may send one for "no name")
        raise validation_error({"name": [f"must be 1 to {MAX_NAME} characters"]})
    return clean_key_name(name)


@bp.get("/api-keys")
@document_querystring(PageQuery)
@document_response(Page[ApiKey], 200)
async def list_api_keys() -> Any:
    """List the organization's API keys (revoked ones too), newest first; never a secret."""
    limit, offset = pagination()
    rows = await _store().list_api_keys(org_id(), limit=limit, offset=offset)
    return jsonify(page([_key(r) for r in rows], rows, limit, offset))


@bp.post("/api-keys")
@document_request(ApiKeyCreateRequest)
@openapi.optional_body
@document_response(Data[ApiKeyCreated], 201)
async def create_api_key() -> Any:
    """Create an API key; the full key is in this answer only (the body may be empty)."""
    raw = await request.get_data(as_text=False)
    payload = await json_body() if raw.strip() else {}
    name = _parse_name(payload)
    new = apikeys.generate()
    row = await _store().create_api_key(org_id(), new.key_id, new.key_hash, name)
    return jsonify({"data": {**_key(row), "key": new.full}}), 201


@bp.delete("/api-keys/<api_key_id>")
@openapi.no_content
async def revoke_api_key(api_key_id: str) -> Any:
    """Revoke an API key: it stops working at once, on every node (repeating is harmless)."""
    await _store().revoke_api_key(org_id(), parse_id(api_key_id, "API key"))
    return "", 204
