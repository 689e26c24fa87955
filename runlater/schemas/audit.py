"""OpenAPI models of ``GET /api/v1/audit-log``."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field


class AuditActor(BaseModel):
    """Who made the call: an API key (its id) or a user."""

    type: Literal["api_key", "user"]
    id: UUID | None


class AuditEntry(BaseModel):
    """One successful mutating API call."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "0190f1c2-ad7e-7f60-b123-4d5e6f708192",
                    "actor": {"type": "api_key", "id": "0190f1c2-9c6d-7e5f-a012-3c4d5e6f7081"},
                    "action": "POST /api/v1/tasks",
                    "resource_id": "0190f1c2-7a4b-7c3d-9e8f-1a2b3c4d5e6f",
                    "status_code": 202,
                    "ip": "203.0.113.7",
                    "inserted_at": "2026-01-01T09:00:00.000Z",
                }
            ]
        }
    )

    id: UUID
    actor: AuditActor
    action: str = Field(description="method and route, e.g. `DELETE /api/v1/tasks/<task_id>`")
    resource_id: str | None = Field(description="the id the call was about, if any")
    status_code: int = Field(ge=100, le=599)
    ip: str | None = Field(description="the caller's address")
    inserted_at: datetime
