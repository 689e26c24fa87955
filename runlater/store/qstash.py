"""Store methods of the QStash-compatible API: signing keys, deduplication ids, and the reads of
schedules and queues in QStash's terms (``sql/qstash.sql``).

A deduplication id is an ``idempotency_keys`` record (``qstash-dedup:<id>``): taken with the
same transaction-scoped lock as an Idempotency-Key, written in the request's transaction with
the message it created, kept 24 hours (the janitor purges it with the other keys).
"""

from __future__ import annotations

import json
from typing import Any, Protocol
from uuid import UUID

import asyncpg

from runlater.store.base import StoreBase, fetch, fetchrow
from runlater.store.queries import Q
from runlater.store.records import Row
from runlater.store.transaction import KEY_LOCK_SEED

MAX_SCHEDULES = 1000


async def _take_dedup(conn: asyncpg.Connection, org_id: UUID, key: str) -> str | None:
    await conn.execute(Q.lock_qstash_dedup, org_id, key, KEY_LOCK_SEED)
    body = await conn.fetchval(Q.find_qstash_dedup, org_id, key)
    if body is None:
        return None
    found: Any = json.loads(bytes(body))
    return str(found["messageId"]) if isinstance(found, dict) else None


class QStashPort(Protocol):
    """What ``/v2`` needs from the store besides the task calls."""

    async def qstash_signing_keys(self, org_id: UUID) -> Row: ...

    async def rotate_qstash_signing_keys(self, org_id: UUID) -> Row: ...

    async def take_qstash_dedup(self, org_id: UUID, key: str) -> str | None: ...

    async def keep_qstash_dedup(
        self, org_id: UUID, key: str, path: str, message_id: str
    ) -> None: ...

    async def qstash_schedules(self, org_id: UUID) -> list[Row]: ...

    async def qstash_queues(self, org_id: UUID, name: str | None = None) -> list[Row]: ...

    async def delete_qstash_queue(self, org_id: UUID, name: str) -> Row: ...

    async def qstash_tasks(self, org_id: UUID, ids: list[UUID]) -> dict[UUID, Row]: ...


class QStashStore(StoreBase):
    async def qstash_signing_keys(self, org_id: UUID) -> Row:
        """``current`` and ``next``: the keys Upstash-Signature is made and checked with."""
        return await self._one("organization not found", Q.qstash_signing_keys, org_id)

    async def rotate_qstash_signing_keys(self, org_id: UUID) -> Row:
        """The next key becomes current; a new next key. Returns both."""
        return await self._one("organization not found", Q.rotate_qstash_signing_keys, org_id)

    async def take_qstash_dedup(self, org_id: UUID, key: str) -> str | None:
        """Hold deduplication key ``key`` for the request's transaction (waiting while another
        request holds it) and return the message id it recorded in the last 24 h, if any."""
        found: str | None = await self._run(_take_dedup, org_id, key)
        return found

    async def keep_qstash_dedup(self, org_id: UUID, key: str, path: str, message_id: str) -> None:
        """Record the message a deduplication key made (in the request's transaction)."""
        body = json.dumps({"messageId": message_id}).encode()
        await self._run(
            fetchrow,
            Q.store_idempotency_answer,
            org_id,
            key,
            "POST",
            path,
            key,
            201,
            body,
            {"Content-Type": "application/json"},
        )

    async def qstash_schedules(self, org_id: UUID) -> list[Row]:
        """Cron tasks made through /v2, oldest first (at most 1000)."""
        return await self._run(fetch, Q.qstash_schedules, org_id, MAX_SCHEDULES)

    async def qstash_queues(self, org_id: UUID, name: str | None = None) -> list[Row]:
        """Queues with ``lag`` (pending executions); only ``name`` when given."""
        return await self._run(fetch, Q.qstash_queues, org_id, name)

    async def delete_qstash_queue(self, org_id: UUID, name: str) -> Row:
        """``existed``, ``tasks`` (live tasks naming it: then it is kept) and ``deleted``."""
        return await self._one("queue not found", Q.delete_qstash_queue, org_id, name)

    async def qstash_tasks(self, org_id: UUID, ids: list[UUID]) -> dict[UUID, Row]:
        """The organization's tasks among ``ids`` by id (deleted ones too)."""
        rows = await self._run(fetch, Q.qstash_tasks_by_id, org_id, ids)
        return {row["id"]: row for row in rows}
