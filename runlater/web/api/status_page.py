"""``/api/v1/status-page``: the organization's public status page (off by default)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field
from quart import Blueprint, jsonify
from quart_schema import document_request, document_response

from runlater.schemas.common import Data
from runlater.web import serialize
from runlater.web.api.common import json_body
from runlater.web.auth import org_id
from runlater.web.context import services

bp = Blueprint("status_page", __name__)


class StatusItem(BaseModel):
    type: Literal["task", "monitor", "uptime_check", "queue"]
    id: UUID | None = Field(default=None, description="a task's, monitor's or uptime check's")
    name: str | None = Field(default=None, description="a queue's")


class StatusPage(BaseModel):
    """What ``/s/{slug}`` shows when ``enabled``: the items in this order, each with its state
    now and its last 90 days."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "enabled": True,
                    "slug": "acme",
                    "title": "Acme status",
                    "items": [
                        {"type": "monitor", "id": "0190f1c2-7a4b-7c3d-9e8f-1a2b3c4d5e70"},
                        {"type": "queue", "name": "emails"},
                    ],
                    "url": "https://runlater.example/s/acme",
                    "updated_at": None,
                }
            ]
        }
    )

    enabled: bool = False
    slug: str = Field(description="1-63 lower-case letters, digits and -; unique")
    title: str
    items: list[StatusItem] = Field(max_length=50)
    url: str | None = Field(default=None, description="where the page is public")
    updated_at: datetime | None = None


class StatusPageChange(BaseModel):
    """The fields given change; ``items`` replaces the list."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "enabled": True,
                    "slug": "acme",
                    "title": "Acme status",
                    "items": [{"type": "monitor", "id": "0190f1c2-7a4b-7c3d-9e8f-1a2b3c4d5e70"}],
                }
            ]
        }
    )

    enabled: bool | None = None
    slug: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    title: str | None = Field(default=None, min_length=1, max_length=200)
    items: list[StatusItem] | None = Field(default=None, max_length=50)


def _out(row: dict[str, Any]) -> dict[str, Any]:
    base = services().settings.public_base_url
    return {
        "enabled": row["enabled"],
        "slug": row["slug"],
        "title": row["title"],
        "items": row["items"],
        "url": f"{base}/s/{row['slug']}",
        "updated_at": serialize.ts(row.get("updated_at")),
    }


@bp.get("/status-page")
@document_response(Data[StatusPage], 200)
async def get_status_page() -> Any:
    """The organization's status page settings (defaults until it is saved: off, the
    organization's slug and name, no items)."""
    return jsonify({"data": _out(await services().store.get_status_page(org_id()))})


@bp.put("/status-page")
@document_request(StatusPageChange)
@document_response(Data[StatusPage], 200)
async def put_status_page() -> Any:
    """Change the status page: the fields given change (``items`` replaces the list)."""
    row = await services().status_pages.put(org_id(), await json_body())
    return jsonify({"data": _out(row)})
