"""Store methods for notifications: channels, maintenance windows, the notification log, and
the Notifier's two steps.

1. ``expand_notification_events``: lock pending events (``SKIP LOCKED``), read what their
   organizations need, let the caller's ``plan`` turn them into notifications, write those
   (e-mails straight into the mail outbox) and mark the events done — one transaction, so an
   event becomes its notifications exactly once.
2. ``claim_notifications`` / ``finish_notifications``: the HTTP channels' sends, leased and
   fenced like callbacks; ``finish_summary`` hands an hour's throttle summary to the mail
   outbox.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

import asyncpg

from runlater.errors import NotFound
from runlater.store import bridge
from runlater.store.base import StoreBase, fetch, fetchrow, fetchval
from runlater.store.mail import OutgoingMail, enqueue_mail
from runlater.store.queries import Q
from runlater.store.records import Row


class NotificationDraft(Protocol):
    """What the store needs of a planned notification (``domain.notifications.Draft``)."""

    organization_id: UUID
    event_id: UUID | None
    event: str
    resource_type: str | None
    resource_id: UUID | None
    channel_id: UUID | None
    channel_type: str
    target: str
    payload: dict[str, Any]
    status: str
    reason: str | None
    mails: list[Any]
    next_attempt_at: datetime | None
    summary_of: datetime | None


@dataclass(frozen=True, slots=True)
class NotificationResult:
    notification_id: UUID
    lease_token: UUID
    ok: bool
    status_code: int | None
    error: str | None
    retry_in_s: float


# plan(events, contexts by organization id) -> drafts
Plan = Callable[[list[Row], dict[UUID, Row]], Sequence[NotificationDraft]]


async def write_drafts(
    conn: asyncpg.Connection, drafts: Sequence[NotificationDraft], now: datetime, domain: str
) -> int:
    """Write planned notifications on ``conn`` (inside the caller's transaction), their mails
    into the outbox. Returns how many rows were written."""
    for draft in drafts:
        await conn.execute(
            Q.insert_notification,
            draft.organization_id,
            draft.event_id,
            draft.channel_id,
            draft.event,
            draft.resource_type,
            draft.resource_id,
            draft.channel_type,
            draft.target,
            draft.payload,
            draft.status,
            draft.reason,
            draft.next_attempt_at,
            draft.summary_of,
            now,
        )
        for mail in draft.mails:
            await enqueue_mail(conn, mail, organization_id=draft.organization_id, domain=domain)
    return len(drafts)


def _context(record: asyncpg.Record) -> Row:
    found = dict(record)
    for key in ("channels", "windows"):
        value = found[key]
        found[key] = json.loads(value) if isinstance(value, str) else value
    return found


async def _expand(
    conn: asyncpg.Connection, limit: int, now: datetime, hour: datetime, plan: Plan, domain: str
) -> int:
    async with bridge.transaction(conn):
        events = [dict(r) for r in await conn.fetch(Q.lock_pending_events, limit)]
        if not events:
            return 0
        org_ids = sorted({e["organization_id"] for e in events})
        contexts = {
            r["id"]: _context(r) for r in await conn.fetch(Q.notify_contexts, org_ids, now, hour)
        }
        drafts = plan(events, contexts)
        await write_drafts(conn, drafts, now, domain)
        await conn.execute(Q.mark_events_processed, [e["id"] for e in events], now)
        return len(events)


async def _claim(conn: asyncpg.Connection, limit: int, lease_s: float, now: datetime) -> list[Row]:
    async with bridge.transaction(conn):
        await conn.execute(Q.rescue_notifications, now)
        return [dict(r) for r in await conn.fetch(Q.claim_notifications, limit, lease_s, now)]


async def _finish_summary(
    conn: asyncpg.Connection,
    row: Row,
    compose: Callable[[list[str], list[Row]], list[OutgoingMail]],
    now: datetime,
    domain: str,
) -> bool:
    async with bridge.transaction(conn):
        throttled = [
            dict(r)
            for r in await conn.fetch(
                Q.throttled_in_hour, row["organization_id"], row["summary_of"]
            )
        ]
        if row["target"] == "owners":
            addresses = list((await conn.fetchval(Q.owners_of, row["organization_id"])) or [])
        else:
            addresses = [row["target"]]
        done = await conn.fetchval(Q.finish_summary, row["id"], row["lease_token"], now)
        if done is None:
            return False  # the lease was lost: another node sends it
        for mail in compose(addresses, throttled):
            await enqueue_mail(conn, mail, organization_id=row["organization_id"], domain=domain)
        return True


class NotificationStore(StoreBase):
    # -- channels

    async def insert_channel(self, org_id: UUID, fields: Row) -> Row:
        found = await self._run(
            fetchrow,
            Q.insert_channel,
            org_id,
            fields["name"],
            fields["type"],
            fields["target"],
            list(fields["events"]),
            fields["enabled"],
        )
        assert found is not None
        return found

    async def list_channels(self, org_id: UUID) -> list[Row]:
        return await self._run(fetch, Q.list_channels, org_id)

    async def get_channel(self, org_id: UUID, channel_id: UUID) -> Row:
        return await self._one("notification channel not found", Q.get_channel, org_id, channel_id)

    async def update_channel(
        self, org_id: UUID, channel_id: UUID, merge: Callable[[Row], Row]
    ) -> Row:
        """Lock the channel, let ``merge(current) -> every field`` decide, write."""

        async def unit(conn: asyncpg.Connection) -> Row | None:
            async with bridge.transaction(conn):
                current = await conn.fetchrow(Q.get_channel_for_update, org_id, channel_id)
                if current is None:
                    return None
                new = merge(dict(current))
                found = await conn.fetchrow(
                    Q.update_channel,
                    org_id,
                    channel_id,
                    new["name"],
                    new["type"],
                    new["target"],
                    list(new["events"]),
                    new["enabled"],
                )
                return dict(found) if found is not None else None

        found = await self._run(unit)
        if found is None:
            raise NotFound("notification channel not found")
        return found

    async def delete_channel(self, org_id: UUID, channel_id: UUID) -> None:
        if await self._run(fetchval, Q.delete_channel, org_id, channel_id) is None:
            raise NotFound("notification channel not found")

    async def write_notifications(
        self, drafts: Sequence[NotificationDraft], now: datetime, domain: str
    ) -> int:
        """Write notifications made outside the Notifier (a channel's test) in one go."""

        async def unit(conn: asyncpg.Connection) -> int:
            async with bridge.transaction(conn):
                written = await write_drafts(conn, drafts, now, domain)
                await conn.execute("select pg_notify('runlater_notifications', '')")
                return written

        written: int = await self._run(unit)
        return written

    async def owners_of(self, org_id: UUID) -> list[str]:
        """The e-mail addresses of the organization's owners."""
        return list((await self._run(fetchval, Q.owners_of, org_id)) or [])

    async def list_notifications(
        self, org_id: UUID, *, limit: int, offset: int, channel_id: UUID | None = None
    ) -> list[Row]:
        return await self._run(fetch, Q.list_notifications, org_id, limit, offset, channel_id)

    # -- maintenance windows

    async def insert_window(self, org_id: UUID, fields: Row) -> Row:
        if fields["resource_type"] is not None and not await self._run(
            fetchval, Q.resource_exists, org_id, fields["resource_type"], fields["resource_id"]
        ):
            raise NotFound(f"{fields['resource_type']} not found")
        found = await self._run(
            fetchrow,
            Q.insert_window,
            org_id,
            fields["resource_type"],
            fields["resource_id"],
            fields["starts_at"],
            fields["ends_at"],
            fields["cron"],
            fields["timezone"],
            fields["duration_minutes"],
            fields["reason"],
        )
        assert found is not None
        return found

    async def list_windows(self, org_id: UUID) -> list[Row]:
        return await self._run(fetch, Q.list_windows, org_id)

    async def delete_window(self, org_id: UUID, window_id: UUID) -> None:
        if await self._run(fetchval, Q.delete_window, org_id, window_id) is None:
            raise NotFound("maintenance window not found")

    # -- the Notifier

    async def expand_notification_events(
        self, limit: int, now: datetime, hour: datetime, plan: Plan, domain: str
    ) -> int:
        """Turn up to ``limit`` pending events into notifications (see the module doc);
        returns how many events were expanded."""
        expanded: int = await self._run(_expand, limit, now, hour, plan, domain)
        return expanded

    async def claim_notifications(self, limit: int, lease_s: float, now: datetime) -> list[Row]:
        return await self._run(_claim, limit, lease_s, now)

    async def finish_notifications(
        self, results: Sequence[NotificationResult], max_attempts: int, now: datetime
    ) -> int:
        if not results:
            return 0
        rows = await self._run(
            fetch,
            Q.finish_notifications,
            [r.notification_id for r in results],
            [r.lease_token for r in results],
            [r.ok for r in results],
            [r.status_code for r in results],
            [r.error for r in results],
            [r.retry_in_s for r in results],
            max_attempts,
            now,
        )
        return len(rows)

    async def finish_summary(
        self,
        row: Row,
        compose: Callable[[list[str], list[Row]], list[OutgoingMail]],
        now: datetime,
        domain: str,
    ) -> bool:
        """Mail an hour's throttle summary (to the row's target) and mark it sent, in one
        transaction, fenced by its lease."""
        done: bool = await self._run(_finish_summary, row, compose, now, domain)
        return done

    async def next_notification_due_in(self, now: datetime) -> float | None:
        return await self._run(fetchval, Q.next_notification_due_in_s, now)
