"""Notification channels, maintenance windows and a channel's test, as every front door
changes them. Raises ``InvalidInput`` (and passes the store's ``NotFound``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from runlater.clock import Clock
from runlater.cron import CronSchedule
from runlater.domain.notifications import Draft, channel_payload, mails_for, message_for
from runlater.domain.service import Accepted
from runlater.domain.urls import FieldWarning, UrlPolicy
from runlater.errors import InvalidCron, invalid
from runlater.schemas.notifications import (
    EVENTS,
    OWNERS,
    check_target,
    parse_channel,
    parse_window,
)
from runlater.store.ports import NotificationResourceStore
from runlater.store.records import Row


@dataclass(frozen=True, slots=True)
class NotificationService:
    store: NotificationResourceStore
    urls: UrlPolicy
    clock: Clock
    base_url: str
    mail_domain: str

    async def _check_url(self, fields: Row) -> list[FieldWarning]:
        if fields["type"] == "email":
            return []
        return await self.urls.check({"target": fields["target"]}, ("target",))

    async def create_channel(self, org_id: UUID, payload: Any) -> Accepted[Row]:
        _, fields = parse_channel(payload)
        missing = {k: ["is required"] for k in ("name", "type") if getattr(fields, k) is None}
        if missing:
            raise invalid(missing)
        assert fields.type is not None
        row = {
            "name": fields.name,
            "type": fields.type,
            "target": check_target(fields.type, fields.target),
            "events": list(fields.events or EVENTS),
            "enabled": True if fields.enabled is None else fields.enabled,
        }
        warnings = await self._check_url(row)
        return Accepted(await self.store.insert_channel(org_id, row), warnings)

    async def update_channel(self, org_id: UUID, channel_id: UUID, payload: Any) -> Accepted[Row]:
        given, fields = parse_channel(payload)
        for key in ("name", "type", "events", "enabled"):
            if key in given and getattr(fields, key) is None:
                raise invalid({key: ["cannot be null"]})
        checked: list[Row] = []

        def merge(current: Row) -> Row:
            new = dict(current)
            new.update({k: getattr(fields, k) for k in given})
            if "type" in given and "target" not in given and new["type"] != current["type"]:
                new["target"] = None  # a new type needs its own target
            new["target"] = check_target(new["type"], new["target"])
            checked.append(new)
            return new

        updated = await self.store.update_channel(org_id, channel_id, merge)
        warnings = await self._check_url(checked[0]) if "target" in given else []
        return Accepted(updated, warnings)

    async def delete_channel(self, org_id: UUID, channel_id: UUID) -> None:
        await self.store.delete_channel(org_id, channel_id)

    async def test_channel(self, org_id: UUID, organization: str, channel_id: UUID) -> str:
        """Send the channel a test notification now (through the same outbox); its status."""
        channel = await self.store.get_channel(org_id, channel_id)
        now = self.clock.now()
        event: Row = {
            "event": "channel.test",
            "resource_type": None,
            "resource_id": None,
            "resource_name": None,
            "details": {},
            "occurred_at": now,
        }
        message = message_for(event, self.base_url)
        draft = Draft(
            organization_id=org_id,
            event_id=None,
            event="channel.test",
            resource_type=None,
            resource_id=None,
            channel_id=channel_id,
            channel_type=channel["type"],
            target=channel["target"],
            payload={"title": message.title, "lines": message.lines, "link": message.link},
            status="pending",
        )
        if channel["type"] == "email":
            owners = await self.store.owners_of(org_id) if channel["target"] == OWNERS else None
            addresses = owners if owners is not None else [channel["target"]]
            draft.status = "sent"
            draft.mails = mails_for(addresses, message, organization)
        else:
            draft.payload = channel_payload(channel["type"], event, message, organization)
        await self.store.write_notifications([draft], now, self.mail_domain)
        return draft.status

    async def create_window(self, org_id: UUID, payload: Any) -> Row:
        fields = parse_window(payload)
        now = self.clock.now()
        row: Row = fields.model_dump()
        if (fields.resource_type is None) != (fields.resource_id is None):
            raise invalid({"resource_id": ["give resource_type and resource_id together"]})
        if fields.cron is not None:
            if fields.duration_minutes is None:
                raise invalid({"duration_minutes": ["is required with cron"]})
            if fields.starts_at is not None or fields.ends_at is not None:
                raise invalid({"cron": ["a recurring window has no starts_at or ends_at"]})
            timezone = fields.timezone or "UTC"
            try:
                ZoneInfo(timezone)
                schedule = CronSchedule(fields.cron, timezone)
            except (ZoneInfoNotFoundError, ValueError, InvalidCron) as exc:
                field = "timezone" if "zone" in str(exc).lower() else "cron"
                raise invalid({field: [str(exc) or "unknown time zone"]}) from None
            row.update(cron=schedule.expression, timezone=schedule.timezone)
        else:
            if fields.ends_at is None:
                raise invalid({"ends_at": ["is required (or give cron and duration_minutes)"]})
            if fields.duration_minutes is not None or fields.timezone is not None:
                raise invalid({"duration_minutes": ["only a recurring (cron) window has one"]})
            starts = fields.starts_at or now
            if fields.ends_at.tzinfo is None or starts.tzinfo is None:
                raise invalid({"ends_at": ["must have a time zone offset, e.g. ...Z"]})
            if fields.ends_at <= starts:
                raise invalid({"ends_at": ["must be after starts_at"]})
            if fields.ends_at <= now:
                raise invalid({"ends_at": ["is in the past"]})
            row.update(starts_at=starts, timezone="UTC")
        return await self.store.insert_window(org_id, row)

    async def delete_window(self, org_id: UUID, window_id: UUID) -> None:
        await self.store.delete_window(org_id, window_id)
