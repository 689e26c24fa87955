"""The Postgres store: every read and write of Runlater's state.

Methods are trio-facing; each runs one *unit of work* (an asyncio coroutine taking a
connection) through ``bridge.run`` in a single crossing. Tenant queries take the organization id.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from runlater.errors import Conflict, NotFound
from runlater.store import bridge
from runlater.store.access import AccessStore
from runlater.store.base import fetch, fetchrow, fetchval
from runlater.store.bulk import BulkStore
from runlater.store.dlq import DeadLetterStore
from runlater.store.events import EventStore
from runlater.store.inbound import InboundStore
from runlater.store.mail import MailStore
from runlater.store.migrate import MIGRATION_DEADLINE_S, apply_migrations
from runlater.store.monitors import MonitorStore
from runlater.store.notifications import NotificationStore
from runlater.store.people import MembersStore
from runlater.store.qstash import QStashStore
from runlater.store.queries import Q
from runlater.store.queues import QueueStore
from runlater.store.records import (
    AdvanceResult,
    CallbackResult,
    ClaimedExecution,
    CronAdvance,
    DueCronTask,
    Outcome,
    RescueResult,
    Row,
)
from runlater.store.status import StatusStore
from runlater.store.task_writes import update_task_row
from runlater.store.uptime import UptimeStore
from runlater.store.usage import UsageStore

MAX_INTERRUPTIONS = 3
MAX_ATTEMPT = 11  # the executions.attempt check: a first attempt and up to 10 retries
RETRYABLE_STATUSES = frozenset({"failed", "timeout"})


# ---------------------------------------------------------------- units of work (asyncio side)


async def _claim(
    conn: asyncpg.Connection, limit: int, node: str, margin_s: float
) -> tuple[list[asyncpg.Record], float | None]:
    rows = await conn.fetch(Q.claim_executions, limit, node, margin_s)
    due_in = None
    if len(rows) < limit:
        due_in = await conn.fetchval(Q.next_due_in_s)
    return rows, due_in


async def _claim_callbacks(conn: asyncpg.Connection, limit: int, lease_s: float) -> list[Row]:
    await conn.execute(Q.rescue_callbacks)
    return [dict(r) for r in await conn.fetch(Q.claim_callbacks, limit, lease_s)]


async def _retry_execution(conn: asyncpg.Connection, org_id: UUID, execution_id: UUID) -> Row:
    """One more attempt of a failed execution, in the same retry chain (same webhook-id)."""
    async with bridge.transaction(conn):
        source = await conn.fetchrow(Q.get_execution_for_retry, org_id, execution_id)
        if source is None:
            raise NotFound("execution not found")
        if source["status"] not in RETRYABLE_STATUSES:
            raise Conflict(
                f"only a failed or timed-out execution can be retried; this one is "
                f"{source['status']}"
            )
        if source["attempt"] >= MAX_ATTEMPT:
            raise Conflict(f"an execution chain has at most {MAX_ATTEMPT} attempts")
        await conn.execute(Q.mark_new_work)  # a plan's hard monthly limit refuses it
        row = await conn.fetchrow(
            Q.insert_manual_retry,
            source["organization_id"],
            source["task_id"],
            source["root_id"],
            source["attempt"] + 1,
            source["priority"],
            source["host"],
        )
        await conn.execute(Q.notify_executions, "")
        return dict(row)


async def _bootstrap(
    conn: asyncpg.Connection,
    org_name: str,
    slug: str,
    tier: str,
    secret: str,
    email: str,
    key_id: str,
    key_hash: str,
) -> tuple[Row, bool]:
    async with bridge.transaction(conn):
        org = await conn.fetchrow(Q.find_organization_by_name, org_name)
        created = org is None
        if created:
            org = await conn.fetchrow(Q.insert_organization, org_name, slug, tier, secret)
        user = await conn.fetchrow(Q.upsert_user, email)
        await conn.execute(Q.upsert_membership, user["id"], org["id"], "owner")
        await conn.fetchrow(Q.insert_api_key, org["id"], user["id"], key_id, key_hash, "bootstrap")
        return dict(org), created


# ---------------------------------------------------------------------------- the trio API


class Store(
    EventStore,
    MembersStore,
    QueueStore,
    QStashStore,
    UsageStore,
    BulkStore,
    DeadLetterStore,
    InboundStore,
    AccessStore,
    MailStore,
    MonitorStore,
    NotificationStore,
    UptimeStore,
    StatusStore,
):
    """All database access. Construct with :meth:`open`; close with :meth:`close`."""

    # -- health and schema

    async def ping(self) -> None:
        await self._run(fetchval, Q.ping)

    async def migrate(self) -> list[int]:
        """Apply missing migrations, then write ``runlater.plans`` into the plans table."""
        applied = await bridge.run(self._pool, apply_migrations, deadline_s=MIGRATION_DEADLINE_S)
        await self.sync_plans()
        return applied

    # -- organizations and keys

    async def bootstrap(
        self,
        *,
        org_name: str,
        slug: str,
        tier: str,
        secret: str,
        email: str,
        key_id: str,
        key_hash: str,
    ) -> tuple[Row, bool]:
        return await self._run(_bootstrap, org_name, slug, tier, secret, email, key_id, key_hash)

    async def get_organization(self, org_id: UUID) -> Row:
        return await self._one("organization not found", Q.get_organization, org_id)

    async def rotate_webhook_secret(self, org_id: UUID, new_secret: str) -> Row:
        return await self._one(
            "organization not found", Q.rotate_webhook_secret, org_id, new_secret
        )

    async def list_api_keys(self, org_id: UUID, *, limit: int, offset: int) -> list[Row]:
        return await self._run(fetch, Q.list_api_keys, org_id, limit, offset)

    async def create_api_key(
        self, org_id: UUID, key_id: str, key_hash: str, name: str | None
    ) -> Row:
        return await self._one(
            "organization not found", Q.create_api_key, org_id, key_id, key_hash, name
        )

    async def revoke_api_key(self, org_id: UUID, api_key_id: UUID) -> Row:
        """Sets revoked_at (kept if already set); another org's key is not found."""
        return await self._one("API key not found", Q.revoke_api_key, org_id, api_key_id)

    # -- audit log

    async def list_audit_log(self, org_id: UUID, *, limit: int, offset: int) -> list[Row]:
        return await self._run(fetch, Q.list_audit_log, org_id, limit, offset)

    async def search_audit_log(
        self, org_id: UUID, *, action: str | None, actor_type: str | None, limit: int, offset: int
    ) -> list[Row]:
        """The audit log filtered by a piece of the action and the kind of actor."""
        return await self._run(fetch, Q.search_audit_log, org_id, action, actor_type, limit, offset)

    # -- tasks (API)

    async def insert_task(self, org_id: UUID, task: dict[str, Any], delay_s: float | None) -> Row:
        return await self._one("organization not found", Q.insert_task, org_id, task, delay_s)

    async def get_task(self, org_id: UUID, task_id: UUID) -> Row:
        return await self._one("task not found", Q.get_task, org_id, task_id)

    async def list_tasks(
        self,
        org_id: UUID,
        *,
        schedule_type: str | None,
        queue: str | None,
        status: str | None,
        limit: int,
        offset: int,
        origin: str | None = None,
    ) -> list[Row]:
        return await self._run(
            fetch, Q.list_tasks, org_id, schedule_type, queue, status, limit, offset, origin
        )

    async def search_tasks(
        self,
        org_id: UUID,
        *,
        text: str | None,
        schedule_type: str | None,
        queue: str | None,
        status: str | None,
        enabled: bool | None,
        limit: int,
        offset: int,
        origin: str | None = None,
    ) -> list[Row]:
        """The dashboard's task list: a piece of name or URL, and filters (None = any; for
        ``origin``, every task but inbound endpoints' forwards)."""
        return await self._run(
            fetch,
            Q.search_tasks,
            org_id,
            text,
            schedule_type,
            queue,
            status,
            enabled,
            limit,
            offset,
            origin,
        )

    async def execution_hours(self, org_id: UUID, hours: int) -> list[Row]:
        """Finished executions per hour of the last ``hours`` (the home page's charts)."""
        return await self._run(fetch, Q.execution_hours, org_id, hours)

    async def delete_old_execution_minutes(self, limit: int) -> int:
        """Delete up to ``limit`` rows of the per-minute aggregate older than 8 days."""
        status = await self._run(lambda conn: conn.execute(Q.delete_old_execution_minutes, limit))
        return int(status.split()[-1])

    async def execution_chain(self, org_id: UUID, execution_id: UUID) -> list[Row]:
        """The attempts of the execution's retry chain, first to last (empty: not found)."""
        return await self._run(fetch, Q.execution_chain, org_id, execution_id)

    async def list_failures(self, org_id: UUID, limit: int) -> list[Row]:
        """Failed and timed-out executions that end their retry chain, newest first."""
        return await self._run(fetch, Q.list_failures, org_id, limit)

    async def count_retries_in_flight(self, org_id: UUID) -> int:
        found: int = await self._run(fetchval, Q.count_retries_in_flight, org_id)
        return found

    async def update_task(self, org_id: UUID, task_id: UUID, plan: Any) -> Row:
        """``plan(current) -> dict of changed columns`` runs while the row is locked."""
        row = await self._run(update_task_row, org_id, task_id, plan)
        if row is None:
            raise NotFound("task not found")
        return row

    async def delete_task(self, org_id: UUID, task_id: UUID) -> int:
        row = await self._run(fetchrow, Q.delete_tasks, org_id, [task_id])
        if not row["deleted"]:
            raise NotFound("task not found")
        return row["cancelled"]

    async def trigger_task(self, org_id: UUID, task_id: UUID) -> Row:
        return await self._one("task not found", Q.trigger_task, org_id, task_id)

    async def list_task_executions(
        self, org_id: UUID, task_id: UUID, *, status: str | None, limit: int, offset: int
    ) -> list[Row]:
        await self.get_task(org_id, task_id)
        return await self._run(
            fetch, Q.list_task_executions, org_id, task_id, status, limit, offset
        )

    async def retry_execution(self, org_id: UUID, execution_id: UUID) -> Row:
        """Raises NotFound, or Conflict when the execution is not failed/timed out."""
        return await self._run(_retry_execution, org_id, execution_id)

    async def cancel_queue(self, org_id: UUID, queue: str) -> int:
        return await self._run(fetchval, Q.cancel_queue, org_id, queue)

    async def get_execution(self, org_id: UUID, execution_id: UUID) -> Row:
        return await self._one("execution not found", Q.get_execution, org_id, execution_id)

    # -- engine: claim, complete, rescue

    async def claim(
        self, limit: int, node: str, lease_margin_s: float
    ) -> tuple[list[ClaimedExecution], float | None]:
        """Lease up to ``limit`` due executions; also returns seconds until the next one is due
        when fewer than ``limit`` were due (None when nothing is pending)."""
        if limit <= 0:
            return [], None
        rows, due_in = await self._run(_claim, limit, node, lease_margin_s)
        return [ClaimedExecution(**dict(r)) for r in rows], due_in

    async def complete(self, outcomes: Sequence[Outcome]) -> tuple[int, int]:
        """Record outcomes (fenced by lease token). Returns (rows completed, retries created)."""
        if not outcomes:
            return 0, 0
        cols = (
            [o.execution_id for o in outcomes],
            [o.lease_token for o in outcomes],
            [o.status for o in outcomes],
            [o.status_code for o in outcomes],
            [o.duration_ms for o in outcomes],
            [o.response_body for o in outcomes],
            [o.error_message for o in outcomes],
            [o.request_headers for o in outcomes],
            [o.response_headers for o in outcomes],
            [o.retry_in_s for o in outcomes],
            [o.request_method for o in outcomes],
            [o.request_url for o in outcomes],
            [o.request_body for o in outcomes],
            [o.retry_after_s for o in outcomes],
        )
        row = await self._run(fetchrow, Q.complete_executions, *cols)
        return row["completed"], row["retried"]

    async def release_leases(self, leases: Sequence[tuple[UUID, UUID]]) -> int:
        if not leases:
            return 0
        rows = await self._run(
            fetch, Q.release_leases, [i for i, _ in leases], [t for _, t in leases]
        )
        return len(rows)

    async def rescue_expired(self, limit: int = 1000) -> RescueResult:
        rows = await self._run(fetch, Q.rescue_expired_leases, limit, MAX_INTERRUPTIONS)
        count = {s: sum(1 for r in rows if r["status"] == s) for s in ("pending", "failed")}
        return RescueResult(
            count["pending"], count["failed"], len(rows) - count["pending"] - count["failed"]
        )

    async def count_claimable(self) -> int:
        return await self._run(fetchval, Q.count_claimable)

    async def notify_executions(self) -> None:
        await self._run(fetchval, Q.notify_executions, "")

    # -- callbacks

    async def claim_callbacks(self, limit: int, lease_s: float) -> list[Row]:
        """Rescue callbacks abandoned mid-send, then lease up to ``limit`` due ones."""
        return await self._run(_claim_callbacks, limit, lease_s)

    async def finish_callbacks(self, results: Sequence[CallbackResult], max_attempts: int) -> int:
        if not results:
            return 0
        rows = await self._run(
            fetch,
            Q.finish_callbacks,
            [r.callback_id for r in results],
            [r.lease_token for r in results],
            [r.ok for r in results],
            [r.status_code for r in results],
            [r.error for r in results],
            [r.retry_in_s for r in results],
            max_attempts,
        )
        return len(rows)

    async def next_callback_due_in(self) -> float | None:
        return await self._run(fetchval, Q.next_callback_due_in_s)

    async def get_callback_for_execution(self, org_id: UUID, execution_id: UUID) -> Row | None:
        return await self._run(fetchrow, Q.get_callback_for_execution, org_id, execution_id)

    # -- idempotency keys (taken and answered in the request's transaction: transaction.py)

    async def purge_idempotency_keys(self, limit: int = 10_000) -> int:
        """Delete up to ``limit`` records older than 24 h; returns how many."""
        status = await self._run(lambda conn: conn.execute(Q.purge_idempotency_keys, limit))
        return int(status.split()[-1])

    # -- leader lease

    async def acquire_leader_lease(self, name: str, holder: str, ttl_s: float) -> float | None:
        """Take or renew the lease; returns seconds it stays valid, or None if another holds it."""
        row = await self._run(fetchrow, Q.acquire_leader_lease, name, holder, ttl_s)
        return None if row is None else row["valid_for_s"]

    async def release_leader_lease(self, name: str, holder: str) -> None:
        await self._run(fetchval, Q.release_leader_lease, name, holder)

    # -- scheduler

    async def next_cron_due(self, skipping: Collection[UUID] = ()) -> datetime | None:
        """When the earliest enabled cron task is next due (None when there is none), leaving
        out the tasks in ``skipping``."""
        return await self._run(fetchval, Q.next_cron_due, list(skipping))

    async def due_cron_tasks(self, now: datetime, limit: int) -> list[DueCronTask]:
        rows = await self._run(fetch, Q.due_cron_tasks, now, limit)
        return [DueCronTask(**r) for r in rows]

    async def advance_cron(self, advances: Sequence[CronAdvance]) -> AdvanceResult:
        if not advances:
            return AdvanceResult(0, 0, 0)
        run_task, run_at, run_status = [], [], []
        for adv in advances:
            for scheduled_for, status in adv.runs:
                run_task.append(adv.task_id)
                run_at.append(scheduled_for)
                run_status.append(status)
        row = await self._run(
            fetchrow,
            Q.advance_cron_tasks,
            [a.task_id for a in advances],
            [a.old_next for a in advances],
            [a.new_next for a in advances],
            run_task,
            run_at,
            run_status,
        )
        return AdvanceResult(row["advanced"], row["created"], row["missed"], tuple(row["skipped"]))
