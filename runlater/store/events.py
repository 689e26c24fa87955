"""Reading the rows behind a ``runlater_events`` notification (migration 011) into events.

A notification carries a kind and ids only (it must stay under Postgres's 8,000-byte payload
limit); what a client sees is read here, one query per notification, by a node that has
subscribers.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from runlater.events import Event
from runlater.store.base import StoreBase
from runlater.store.queries import Q

FINISHED_FIELDS = (
    "execution_id",
    "task_id",
    "status",
    "status_code",
    "duration_ms",
    "attempt",
    "scheduled_for",
    "finished_at",
    "queue",
)
STARTED_FIELDS = (
    "execution_id",
    "task_id",
    "status",
    "attempt",
    "scheduled_for",
    "started_at",
    "queue",
)
TASK_KINDS = {"tc": "task.created", "tu": "task.updated"}
# The event types each kind of notification gives, and the order in which kinds of one batch are
# read: for any one task or execution, the order its changes happened in.
KIND_TYPES = {
    "tc": "task.created",
    "tu": "task.updated",
    "xs": "execution.started",
    "xf": "execution.finished",
    "qc": "queue.changed",
    "td": "task.deleted",
    "mc": "monitor.changed",
    "uc": "uptime_check.changed",
    "ie": "endpoint.event_received",
}
# Kinds read as one row per id, by their query: the event's data is the row.
ROW_KINDS = {
    "mc": ("monitor.changed", "event_monitors"),
    "uc": ("uptime_check.changed", "event_uptime_checks"),
    "ie": ("endpoint.event_received", "event_inbound_events"),
}


def parse_notice(payload: str) -> tuple[str, list[Any]] | None:
    """(kind, ids) of a notification's payload; None for one this version does not know."""
    try:
        found = json.loads(payload)
        kind, ids = found["k"], found["ids"]
    except (ValueError, KeyError, TypeError):
        return None
    if kind not in KIND_TYPES or not isinstance(ids, list):
        return None
    return kind, ids


def _at(row: dict[str, Any], *columns: str) -> datetime:
    for column in columns:
        if row.get(column) is not None:
            found: datetime = row[column]
            return found
    read_at: datetime = row["read_at"]
    return read_at


async def _read(conn: asyncpg.Connection, kind: str, ids: list[Any]) -> list[Event]:
    if kind in ("xs", "xf"):
        rows = [dict(r) for r in await conn.fetch(Q.event_executions, ids)]
        if kind == "xs":
            return [
                Event(
                    r["organization_id"],
                    "execution.started",
                    _at(r, "started_at"),
                    {k: r[k] for k in STARTED_FIELDS},
                )
                for r in rows
            ]
        return [
            Event(
                r["organization_id"],
                "execution.finished",
                _at(r, "finished_at"),
                {k: r[k] for k in FINISHED_FIELDS},
            )
            for r in rows
            if r["finished_at"] is not None
        ]
    if kind in TASK_KINDS:
        rows = [dict(r) for r in await conn.fetch(Q.event_tasks, ids)]
        return [
            Event(r["organization_id"], TASK_KINDS[kind], _at(r, "updated_at"), r) for r in rows
        ]
    if kind in ROW_KINDS:
        event_type, query = ROW_KINDS[kind]
        rows = [dict(r) for r in await conn.fetch(getattr(Q, query), ids)]
        return [
            Event(
                r["organization_id"],
                event_type,
                _at(r, "updated_at"),
                {k: v for k, v in r.items() if k not in ("organization_id", "read_at")},
            )
            for r in rows
        ]
    if kind == "td":
        rows = [dict(r) for r in await conn.fetch(Q.event_deleted_tasks, ids)]
        return [
            Event(r["organization_id"], "task.deleted", r["read_at"], {"id": r["id"]}) for r in rows
        ]
    pairs = [(UUID(str(org)), str(name)) for org, name in ids]
    rows = [
        dict(r)
        for r in await conn.fetch(Q.event_queues, [p[0] for p in pairs], [p[1] for p in pairs])
    ]
    return [
        Event(
            r["organization_id"],
            "queue.changed",
            r["read_at"],
            {
                "name": r["name"],
                "paused": r["paused"],
                "pending": r["pending"],
                "running": r["running"],
            },
        )
        for r in rows
    ]


class EventStore(StoreBase):
    async def read_events(self, kind: str, ids: list[Any]) -> list[Event]:
        """The events a notification of ``kind`` about ``ids`` stands for, as the rows are
        now (a row deleted meanwhile gives no event)."""
        found: list[Event] = await self._run(_read, kind, ids)
        return found
