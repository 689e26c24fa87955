"""Store methods for inbound endpoints: the resource, receiving (one statement), the events,
replays, the janitor's retention and declarative sync. See migration 023."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol
from uuid import UUID

import asyncpg

from runlater.errors import Conflict, NotFound
from runlater.store import bridge
from runlater.store.base import StoreBase, fetch, fetchrow, fetchval
from runlater.store.bulk import TaskSyncResult, run_sync
from runlater.store.queries import Q
from runlater.store.records import Row


@dataclass(frozen=True, slots=True)
class InboundRequest:
    """One request to ``/in/{slug}`` as received."""

    slug: str
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    body_is_text: bool
    source_ip: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class EventFilter:
    """Which events of an endpoint: by ids, status, and time received (``since`` included,
    ``until`` excluded); None = any."""

    event_ids: Sequence[UUID] | None = None
    status: str | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True, slots=True)
class EndpointSyncPlan:
    """What a sync writes: new endpoints' rows by name, edits' columns by name and id."""

    create: list[tuple[str, Row]] = field(default_factory=list)
    update: list[tuple[str, UUID, Row]] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)


DecideEndpoints = Callable[[list[Row]], EndpointSyncPlan]


class EndpointTaken(Conflict):
    """Another endpoint has the name (in the organization) or the slug (anywhere); ``field``
    says which."""

    def __init__(self, field: str, value: str) -> None:
        super().__init__(value)
        self.field = field
        self.value = value


def _taken(exc: asyncpg.UniqueViolationError, row: Row) -> EndpointTaken:
    if "slug" in (exc.constraint_name or ""):
        return EndpointTaken("slug", row.get("slug") or "")
    return EndpointTaken("name", row.get("name") or "")


async def _insert_endpoint(conn: asyncpg.Connection, org_id: UUID, row: Row) -> Row:
    try:
        async with conn.transaction():  # a savepoint inside a request's transaction
            found = await conn.fetchrow(Q.insert_endpoint, org_id, row)
    except asyncpg.UniqueViolationError as exc:
        raise _taken(exc, row) from None
    return dict(found)


async def _update_endpoint(
    conn: asyncpg.Connection, org_id: UUID, endpoint_id: UUID, plan: Callable[[Row], Row]
) -> Row | None:
    async with bridge.transaction(conn):
        current = await conn.fetchrow(Q.get_endpoint_for_update, org_id, endpoint_id)
        if current is None:
            return None
        changes = plan(dict(current))
        try:
            async with conn.transaction():
                found = await conn.fetchrow(Q.update_endpoint, org_id, endpoint_id, changes)
        except asyncpg.UniqueViolationError as exc:
            raise _taken(exc, changes) from None
        return dict(found) if found is not None else None


async def _list_events(
    conn: asyncpg.Connection,
    org_id: UUID,
    endpoint_id: UUID,
    where: EventFilter,
    limit: int,
    offset: int,
) -> list[Row]:
    if await conn.fetchrow(Q.get_endpoint, org_id, endpoint_id) is None:
        raise NotFound("endpoint not found")
    rows = await conn.fetch(
        Q.list_inbound_events,
        org_id,
        endpoint_id,
        where.status,
        where.since,
        where.until,
        limit,
        offset,
    )
    return [dict(r) for r in rows]


async def _get_event(
    conn: asyncpg.Connection, org_id: UUID, endpoint_id: UUID, event_id: UUID
) -> Row:
    found = await conn.fetchrow(Q.get_inbound_event, org_id, endpoint_id, event_id)
    if found is None:
        raise NotFound("event not found")
    event = dict(found)
    event["forwards"] = [
        dict(r) for r in await conn.fetch(Q.inbound_event_forwards, org_id, event_id)
    ]
    return event


async def _apply_endpoint_sync(
    conn: asyncpg.Connection,
    org_id: UUID,
    names: list[str],
    decide: DecideEndpoints,
    delete_removed: bool,
) -> TaskSyncResult:
    await conn.execute(Q.lock_org_sync, org_id)
    existing = [dict(r) for r in await conn.fetch(Q.lock_named_endpoints, org_id, names)]
    plan = decide(existing)
    deleted: list[str] = []
    if delete_removed:
        deleted = [
            r["name"] for r in await conn.fetch(Q.delete_unlisted_synced_endpoints, org_id, names)
        ]
    for _, new in plan.create:
        try:
            async with conn.transaction():
                await conn.fetchrow(Q.insert_endpoint, org_id, new)
        except asyncpg.UniqueViolationError as exc:
            raise _taken(exc, new) from None
    for _, endpoint_id, changes in plan.update:
        try:
            async with conn.transaction():
                await conn.fetchrow(Q.update_endpoint, org_id, endpoint_id, changes)
        except asyncpg.UniqueViolationError as exc:
            raise _taken(exc, changes) from None
    await conn.execute(Q.mark_synced_endpoints, org_id, names)
    return TaskSyncResult(
        created=[name for name, _ in plan.create],
        updated=[name for name, _, _ in plan.update],
        deleted=sorted(deleted),
        unchanged=list(plan.unchanged),
    )


async def _sync_endpoints(
    conn: asyncpg.Connection,
    org_id: UUID,
    names: list[str],
    decide: DecideEndpoints,
    delete_removed: bool,
    dry_run: bool,
) -> TaskSyncResult:
    return await run_sync(
        conn, lambda: _apply_endpoint_sync(conn, org_id, names, decide, delete_removed), dry_run
    )


class InboundPort(Protocol):
    """What the inbound service (``runlater.domain.inbound``) needs from the store."""

    async def insert_endpoint(self, org_id: UUID, row: Row) -> Row: ...

    async def get_endpoint(self, org_id: UUID, endpoint_id: UUID) -> Row: ...

    async def list_endpoints(self, org_id: UUID, *, limit: int, offset: int) -> list[Row]: ...

    async def update_endpoint(
        self, org_id: UUID, endpoint_id: UUID, plan: Callable[[Row], Row]
    ) -> Row: ...

    async def delete_endpoint(self, org_id: UUID, endpoint_id: UUID) -> None: ...

    async def sync_endpoints(
        self,
        org_id: UUID,
        names: Sequence[str],
        decide: DecideEndpoints,
        *,
        delete_removed: bool,
        dry_run: bool,
    ) -> TaskSyncResult: ...

    async def list_inbound_events(
        self, org_id: UUID, endpoint_id: UUID, where: EventFilter, *, limit: int, offset: int
    ) -> list[Row]: ...

    async def get_inbound_event(self, org_id: UUID, endpoint_id: UUID, event_id: UUID) -> Row: ...

    async def replay_inbound_events(
        self, org_id: UUID, endpoint_id: UUID, where: EventFilter, limit: int
    ) -> Row: ...

    async def receive_inbound_event(
        self, request: InboundRequest, verdict: str | None, reason: str | None
    ) -> Row | None: ...

    async def inbound_forwards_of(self, org_id: UUID, event_ids: Sequence[UUID]) -> list[Row]: ...

    async def inbound_activity(self, org_id: UUID, since: datetime) -> list[Row]: ...


class InboundStore(StoreBase):
    # -- the REST resource

    async def insert_endpoint(self, org_id: UUID, row: Row) -> Row:
        """EndpointTaken when the name (in the organization) or the slug is taken."""
        found: Row = await self._run(_insert_endpoint, org_id, row)
        return found

    async def get_endpoint(self, org_id: UUID, endpoint_id: UUID) -> Row:
        return await self._one("endpoint not found", Q.get_endpoint, org_id, endpoint_id)

    async def list_endpoints(self, org_id: UUID, *, limit: int, offset: int) -> list[Row]:
        """By name; each row has ``total`` (for paging)."""
        return await self._run(fetch, Q.list_endpoints, org_id, limit, offset)

    async def update_endpoint(
        self, org_id: UUID, endpoint_id: UUID, plan: Callable[[Row], Row]
    ) -> Row:
        """Lock the endpoint, let ``plan(current) -> every editable column`` decide, write."""
        found = await self._run(_update_endpoint, org_id, endpoint_id, plan)
        if found is None:
            raise NotFound("endpoint not found")
        return found

    async def delete_endpoint(self, org_id: UUID, endpoint_id: UUID) -> None:
        """The endpoint, its events and their forwards (pending ones never run)."""
        if await self._run(fetchval, Q.delete_endpoint, org_id, endpoint_id) is None:
            raise NotFound("endpoint not found")

    async def sync_endpoints(
        self,
        org_id: UUID,
        names: Sequence[str],
        decide: DecideEndpoints,
        *,
        delete_removed: bool,
        dry_run: bool,
    ) -> TaskSyncResult:
        """Make the organization's endpoints named ``names`` match the request (as
        ``sync_monitors`` does): one transaction, rolled back for a dry run."""
        return await self._run(
            _sync_endpoints, org_id, list(names), decide, delete_removed, dry_run
        )

    # -- events

    async def list_inbound_events(
        self, org_id: UUID, endpoint_id: UUID, where: EventFilter, *, limit: int, offset: int
    ) -> list[Row]:
        """Newest first, each with ``size`` and ``total``; NotFound when the endpoint is not
        the organization's."""
        return await self._run(_list_events, org_id, endpoint_id, where, limit, offset)

    async def get_inbound_event(self, org_id: UUID, endpoint_id: UUID, event_id: UUID) -> Row:
        """The event with ``size`` and ``forwards`` (each forward task's latest execution)."""
        found: Row = await self._run(_get_event, org_id, endpoint_id, event_id)
        return found

    async def replay_inbound_events(
        self, org_id: UUID, endpoint_id: UUID, where: EventFilter, limit: int
    ) -> Row:
        """New forwards of the chosen events (oldest first, at most ``limit``): ``events``
        and ``forwards`` made; NotFound when the endpoint is not the organization's."""
        found = await self._run(
            fetchrow,
            Q.replay_inbound_events,
            org_id,
            endpoint_id,
            list(where.event_ids) if where.event_ids is not None else None,
            where.status,
            where.since,
            where.until,
            limit,
        )
        if not found["found"]:
            raise NotFound("endpoint not found")
        return found

    async def inbound_forwards_of(self, org_id: UUID, event_ids: Sequence[UUID]) -> list[Row]:
        """The forwards of several events (each with ``event_id``), first made first."""
        return await self._run(fetch, Q.inbound_forwards_of_events, org_id, list(event_ids))

    async def inbound_activity(self, org_id: UUID, since: datetime) -> list[Row]:
        """Per endpoint: ``events`` and ``rejected`` since ``since``, ``last_event_at``."""
        return await self._run(fetch, Q.inbound_activity, org_id, since)

    # -- /in/{slug} (public)

    async def receive_inbound_event(
        self, request: InboundRequest, verdict: str | None, reason: str | None
    ) -> Row | None:
        """Store the event and its forwards in one statement (see ``receive_inbound_event``
        in sql/inbound.sql). None: no endpoint has the slug."""
        return await self._run(
            fetchrow,
            Q.receive_inbound_event,
            request.slug,
            verdict,
            reason,
            request.method,
            request.path,
            request.query,
            request.headers,
            request.body,
            request.body_is_text,
            request.source_ip,
            request.at,
        )

    # -- the Janitor (leader)

    async def delete_old_inbound_events(self, now: datetime, limit: int) -> int:
        deleted: int = await self._run(fetchval, Q.delete_old_inbound_events, now, limit)
        return deleted
