"""Payloads and answers of notification channels, the notification log and maintenance windows
(``/notification-channels``, ``/notifications``, ``/maintenance-windows``)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, field_validator

from runlater.errors import invalid
from runlater.schemas.tasks import validate_model
from runlater.schemas.unknown import read_body

ChannelType = Literal["email", "slack", "discord", "teams", "webhook"]
EventName = Literal[
    "task.failed",
    "task.recovered",
    "monitor.down",
    "monitor.up",
    "endpoint.failed",
    "endpoint.recovered",
    "usage.warning",
    "usage.exhausted",
]
ResourceType = Literal["task", "monitor", "uptime_check", "endpoint"]
EVENTS: tuple[str, ...] = EventName.__args__  # type: ignore[attr-defined]
CHANNEL_TYPES: tuple[str, ...] = ChannelType.__args__  # type: ignore[attr-defined]
OWNERS = "owners"  # an e-mail channel's target meaning: every owner of the organization
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_URL = re.compile(r"^https?://[^\s/?#]+\S*$", re.IGNORECASE)


class ChannelFields(BaseModel):
    """A notification channel. ``type`` decides the format (never the URL's host):
    ``email`` (``target`` an address, or ``owners``: every owner, the default), ``slack``
    (``{"text"}``), ``discord`` (``{"content"}``), ``teams`` (a message card), ``webhook``
    (a JSON event signed like deliveries). ``events`` defaults to all of them."""

    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "examples": [
                {
                    "name": "ops in Slack",
                    "type": "slack",
                    "target": "https://hooks.slack.com/services/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",
                    "events": ["task.failed", "monitor.down"],
                }
            ]
        },
    )

    name: str | None = Field(default=None, min_length=1, max_length=200)
    type: ChannelType | None = None
    target: str | None = Field(
        default=None, max_length=2048, description="an e-mail address, `owners`, or a URL"
    )
    events: list[EventName] | None = Field(default=None, min_length=1)
    enabled: StrictBool | None = None

    @field_validator("events")
    @classmethod
    def _unique(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and len(set(value)) != len(value):
            raise ValueError("lists an event twice")
        return value


CHANNEL_KEYS = frozenset(ChannelFields.model_fields)


def parse_channel(payload: Any) -> tuple[set[str], ChannelFields]:
    """The keys given and the validated fields (422 naming each problem)."""
    data = read_body(payload, "channel", CHANNEL_KEYS)
    return set(data), validate_model(ChannelFields, data)


def check_target(kind: str, target: str | None) -> str:
    """The channel's target for its type, or 422 saying what it must be."""
    if kind == "email":
        if target is None or target == OWNERS:
            return OWNERS
        if not _EMAIL.match(target) or len(target) > 254:
            raise invalid({"target": ["must be an e-mail address, or 'owners'"]})
        return target
    if target is None:
        raise invalid({"target": [f"is required: the {kind} webhook URL"]})
    if not _URL.match(target):
        raise invalid({"target": ["must be an http:// or https:// URL"]})
    return target


class Channel(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "0190f1c2-7a4b-7c3d-9e8f-1a2b3c4d5e80",
                    "name": "ops in Slack",
                    "type": "slack",
                    "target": "https://hooks.slack.com/services/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",
                    "events": ["task.failed", "monitor.down"],
                    "enabled": True,
                    "sent": 12,
                    "failed": 0,
                    "inserted_at": "2026-01-01T10:00:00.000Z",
                    "updated_at": "2026-01-01T10:00:00.000Z",
                }
            ]
        }
    )

    id: UUID
    name: str
    type: ChannelType
    target: str
    events: list[EventName]
    enabled: bool
    sent: int = Field(description="notifications this channel delivered")
    failed: int = Field(description="notifications that failed after their retries")
    inserted_at: datetime
    updated_at: datetime


class ChannelTested(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"channel_id": "0190f1c2-7a4b-7c3d-9e8f-1a2b3c4d5e80", "status": "sent"}]
        }
    )

    channel_id: UUID
    status: Literal["pending", "sent", "failed"] = Field(
        description="`sent`: handed to the mail outbox; `pending`: the Notifier sends it now"
    )


class Notification(BaseModel):
    """One notification: sent, waiting (``pending``), failed after its retries, or
    ``suppressed`` (a maintenance window, notifications turned off, the hourly throttle) —
    with the reason."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "0190f1c2-7a4b-7c3d-9e8f-1a2b3c4d5e81",
                    "channel_id": "0190f1c2-7a4b-7c3d-9e8f-1a2b3c4d5e80",
                    "event": "monitor.down",
                    "resource_type": "monitor",
                    "resource_id": "0190f1c2-7a4b-7c3d-9e8f-1a2b3c4d5e70",
                    "channel_type": "slack",
                    "target": "https://hooks.slack.com/services/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",
                    "status": "suppressed",
                    "reason": "maintenance window: database upgrade (until 2026-01-01T12:00:00Z)",
                    "attempts": 0,
                    "inserted_at": "2026-01-01T11:00:00.000Z",
                    "sent_at": None,
                }
            ]
        }
    )

    id: UUID
    channel_id: UUID | None = Field(description="null: a resource's extra URL, or the owners")
    event: str
    resource_type: str | None
    resource_id: UUID | None
    channel_type: ChannelType
    target: str
    status: Literal["pending", "sending", "sent", "failed", "suppressed"]
    reason: str | None
    attempts: int
    inserted_at: datetime
    sent_at: datetime | None


class NotificationListQuery(BaseModel):
    limit: int = Field(default=50, ge=1, le=100)
    offset: int = Field(default=0, ge=0)
    channel_id: UUID | None = Field(default=None, description="only this channel's")


class WindowFields(BaseModel):
    """A maintenance window: one-off (``ends_at``, and ``starts_at`` or now) or recurring
    (``cron`` with ``timezone`` and ``duration_minutes``). Without a resource it mutes the
    whole organization. Inside it notifications are recorded as suppressed; checks and runs
    go on."""

    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "examples": [
                {"ends_at": "2026-01-01T12:00:00Z", "reason": "database upgrade"},
                {
                    "resource_type": "monitor",
                    "resource_id": "0190f1c2-7a4b-7c3d-9e8f-1a2b3c4d5e70",
                    "cron": "0 2 * * 0",
                    "timezone": "Europe/Berlin",
                    "duration_minutes": 60,
                    "reason": "weekly backup window",
                },
            ]
        },
    )

    resource_type: ResourceType | None = None
    resource_id: UUID | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    cron: str | None = Field(default=None, min_length=1, max_length=200)
    timezone: str | None = Field(default=None, max_length=64)
    duration_minutes: StrictInt | None = Field(default=None, ge=1, le=10080)
    reason: str | None = Field(default=None, max_length=500)


WINDOW_KEYS = frozenset(WindowFields.model_fields)


def parse_window(payload: Any) -> WindowFields:
    return validate_model(WindowFields, read_body(payload, "maintenance_window", WINDOW_KEYS))


class MaintenanceWindow(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "0190f1c2-7a4b-7c3d-9e8f-1a2b3c4d5e82",
                    "resource_type": None,
                    "resource_id": None,
                    "starts_at": "2026-01-01T11:00:00.000Z",
                    "ends_at": "2026-01-01T12:00:00.000Z",
                    "cron": None,
                    "timezone": "UTC",
                    "duration_minutes": None,
                    "reason": "database upgrade",
                    "inserted_at": "2026-01-01T10:00:00.000Z",
                }
            ]
        }
    )

    id: UUID
    resource_type: ResourceType | None
    resource_id: UUID | None
    starts_at: datetime | None
    ends_at: datetime | None
    cron: str | None
    timezone: str
    duration_minutes: int | None
    reason: str | None
    inserted_at: datetime
