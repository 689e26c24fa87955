"""``/api/v1/notification-channels``, ``/api/v1/notifications`` and
``/api/v1/maintenance-windows``: where notifications go, what was sent or suppressed, and
when to keep quiet."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from quart import Blueprint, jsonify, request
from quart_schema import document_querystring, document_request, document_response

from runlater.schemas.common import Data, DataWarnings, Page
from runlater.schemas.notifications import (
    Channel,
    ChannelFields,
    ChannelTested,
    MaintenanceWindow,
    Notification,
    NotificationListQuery,
    WindowFields,
)
from runlater.web import openapi, serialize
from runlater.web.api.common import json_body, page, pagination, parse_id, with_warnings
from runlater.web.auth import org_id
from runlater.web.context import services
from runlater.web.errors import validation_error

bp = Blueprint("notifications", __name__)

CHANNEL_FIELDS = (
    "id",
    "name",
    "type",
    "target",
    "events",
    "enabled",
    "sent",
    "failed",
    "inserted_at",
    "updated_at",
)
NOTIFICATION_FIELDS = (
    "id",
    "channel_id",
    "event",
    "resource_type",
    "resource_id",
    "channel_type",
    "target",
    "status",
    "reason",
    "attempts",
    "inserted_at",
    "sent_at",
)
WINDOW_FIELDS = (
    "id",
    "resource_type",
    "resource_id",
    "starts_at",
    "ends_at",
    "cron",
    "timezone",
    "duration_minutes",
    "reason",
    "inserted_at",
)


def _channel(row: dict[str, Any]) -> dict[str, Any]:
    return serialize.pick({"sent": 0, "failed": 0, **row}, CHANNEL_FIELDS)


@bp.get("/notification-channels")
@document_response(Data[list[Channel]], 200)
async def list_channels() -> Any:
    """The organization's notification channels by name, with what each delivered."""
    rows = await services().store.list_channels(org_id())
    return jsonify({"data": [_channel(r) for r in rows]})


@bp.post("/notification-channels")
@document_request(ChannelFields)
@document_response(DataWarnings[Channel], 201)
@openapi.errors("url_not_allowed")
async def create_channel() -> Any:
    """Add a channel: ``name``, ``type`` and (but for e-mail to the owners) ``target``."""
    created = await services().notifications.create_channel(org_id(), await json_body())
    return jsonify(with_warnings({"data": _channel(created.value)}, created.warnings)), 201


@bp.get("/notification-channels/<channel_id>")
@document_response(Data[Channel], 200)
async def get_channel(channel_id: str) -> Any:
    """Get a channel."""
    row = await services().store.get_channel(org_id(), parse_id(channel_id, "channel"))
    return jsonify({"data": _channel(row)})


@bp.patch("/notification-channels/<channel_id>")
@document_request(ChannelFields)
@document_response(DataWarnings[Channel], 200)
@openapi.errors("url_not_allowed")
async def update_channel(channel_id: str) -> Any:
    """Change a channel's fields (the ones given)."""
    cid = parse_id(channel_id, "channel")
    updated = await services().notifications.update_channel(org_id(), cid, await json_body())
    return jsonify(with_warnings({"data": _channel(updated.value)}, updated.warnings))


@bp.delete("/notification-channels/<channel_id>")
@openapi.no_content
async def delete_channel(channel_id: str) -> Any:
    """Delete a channel; what it was sent stays in the notification log."""
    await services().notifications.delete_channel(org_id(), parse_id(channel_id, "channel"))
    return "", 204


@bp.post("/notification-channels/<channel_id>/test")
@document_response(Data[ChannelTested], 202)
async def test_channel(channel_id: str) -> Any:
    """Send the channel a test notification now; ``GET /notifications?channel_id=`` shows
    how it went."""
    org = org_id()
    cid = parse_id(channel_id, "channel")
    organization = (await services().store.get_organization_usage(org))["name"]
    status = await services().notifications.test_channel(org, organization, cid)
    return jsonify({"data": {"channel_id": str(cid), "status": status}}), 202


@bp.get("/notifications")
@document_querystring(NotificationListQuery)
@document_response(Page[Notification], 200)
async def list_notifications() -> Any:
    """What was sent, is waiting, failed, or was suppressed (and why), newest first."""
    limit, offset = pagination()
    channel = request.args.get("channel_id")
    channel_id = None
    if channel is not None:
        try:
            channel_id = UUID(channel)
        except ValueError:
            raise validation_error({"channel_id": ["must be a channel id (a UUID)"]}) from None
    rows = await services().store.list_notifications(
        org_id(), limit=limit, offset=offset, channel_id=channel_id
    )
    items = [serialize.pick(r, NOTIFICATION_FIELDS) for r in rows]
    return jsonify(page(items, rows, limit, offset))


@bp.get("/maintenance-windows")
@document_response(Data[list[MaintenanceWindow]], 200)
async def list_windows() -> Any:
    """The organization's maintenance windows, newest first."""
    rows = await services().store.list_windows(org_id())
    return jsonify({"data": [serialize.pick(r, WINDOW_FIELDS) for r in rows]})


@bp.post("/maintenance-windows")
@document_request(WindowFields)
@document_response(Data[MaintenanceWindow], 201)
@openapi.errors("not_found")  # the resource it names is not the organization's
async def create_window() -> Any:
    """Mute notifications of the organization, or of one resource, until a time or on a
    recurring schedule. Suppressed notifications are recorded with the window's reason."""
    row = await services().notifications.create_window(org_id(), await json_body())
    return jsonify({"data": serialize.pick(row, WINDOW_FIELDS)}), 201


@bp.delete("/maintenance-windows/<window_id>")
@openapi.no_content
async def delete_window(window_id: str) -> Any:
    """End a maintenance window now (delete it)."""
    await services().notifications.delete_window(org_id(), parse_id(window_id, "window"))
    return "", 204
