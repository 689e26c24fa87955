"""OpenAPI models of ``/api/v1/api-keys``: the public view of a key, and the one-time secret."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

API_KEY_EXAMPLE: dict[str, Any] = {
    "id": "0190f1c2-9c6d-7e5f-a012-3c4d5e6f7081",
    "name": "deploy",
    "key_id": "pk_live_AbCdEfGhIjKlMnOpQrStUvWx",
    "last_used_at": "2026-01-01T08:59:12.000Z",
    "revoked_at": None,
    "inserted_at": "2025-12-01T10:00:00.000Z",
}
KEY_ID_PATTERN = r"^pk_live_[A-Za-z0-9]{24}$"


class ApiKey(BaseModel):
    """An API key as listed: never its secret part or hash."""

    model_config = ConfigDict(json_schema_extra={"examples": [API_KEY_EXAMPLE]})

    id: UUID
    name: str | None
    key_id: str = Field(pattern=KEY_ID_PATTERN, description="the public part of the key")
    last_used_at: datetime | None
    revoked_at: datetime | None = Field(description="set once the key is revoked")
    inserted_at: datetime


class ApiKeyCreated(ApiKey):
    """A new key; ``key`` (public and secret part) is shown this once and never again."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    **API_KEY_EXAMPLE,
                    "last_used_at": None,
                    "key": f"{API_KEY_EXAMPLE['key_id']}.sk_live_{'a1B2c3D4' * 4}",
                }
            ]
        }
    )

    key: str = Field(
        pattern=r"^pk_live_[A-Za-z0-9]{24}\.sk_live_[A-Za-z0-9]{32}$",
        description="send as `Authorization: Bearer <key>`",
    )


class ApiKeyCreate(BaseModel):
    """An optional name; the body may be empty, flat or wrapped in ``{"api_key": {...}}``."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"name": "deploy"}]})

    name: str | None = Field(default=None, min_length=1, max_length=200)


class ApiKeyCreateRequest(BaseModel):
    """An optional name, flat (`{"name": ...}`) or wrapped (`{"api_key": {"name": ...}}`); the
    body may also be empty. One object rather than a union of the two forms: client generators
    handle an optional union body badly."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"name": "deploy"}]})

    name: str | None = Field(default=None, min_length=1, max_length=200)
    api_key: ApiKeyCreate | None = Field(default=None, description="the same, wrapped")
