"""What each part of Runlater needs from the store, as Protocols.

Actors and the domain depend on these, not on ``Store``: each names the few calls it makes, so
a test can hand in anything that has them (a fault-injecting wrapper of the real store) and
still type-check. ``Store`` satisfies every one of them; mypy checks that where the node wires
them together.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

from runlater.store.bulk import Decide, TaskSyncResult
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


class DeliveryStore(Protocol):
    """The pool, its workers and recorder, and the rescuer."""

    async def claim(
        self, limit: int, node: str, lease_margin_s: float
    ) -> tuple[list[ClaimedExecution], float | None]: ...

    async def complete(self, outcomes: Sequence[Outcome]) -> tuple[int, int]: ...

    async def release_leases(self, leases: Sequence[tuple[UUID, UUID]]) -> int: ...

    async def notify_executions(self) -> None: ...

    async def rescue_expired(self, limit: int = 1000) -> RescueResult: ...


class ScheduleStore(Protocol):
    """The scheduler."""

    async def due_cron_tasks(self, now: datetime, limit: int) -> list[DueCronTask]: ...

    async def advance_cron(self, advances: Sequence[CronAdvance]) -> AdvanceResult: ...

    async def next_cron_due(self, skipping: Collection[UUID] = ()) -> datetime | None: ...


class CallbackStore(Protocol):
    """The callbacker."""

    async def claim_callbacks(self, limit: int, lease_s: float) -> list[Row]: ...

    async def finish_callbacks(
        self, results: Sequence[CallbackResult], max_attempts: int
    ) -> int: ...

    async def next_callback_due_in(self) -> float | None: ...


class LeaseStore(Protocol):
    """The elector."""

    async def acquire_leader_lease(self, name: str, holder: str, ttl_s: float) -> float | None: ...

    async def release_leader_lease(self, name: str, holder: str) -> None: ...


class RetentionStore(Protocol):
    """The janitor."""

    async def delete_expired_executions(self, now: datetime, limit: int) -> int: ...

    async def delete_stale_host_backoffs(self, older_than_s: float, limit: int) -> int: ...

    async def purge_idempotency_keys(self, limit: int = 10_000) -> int: ...


class TaskStore(Protocol):
    """The domain's task service."""

    async def insert_task(
        self, org_id: UUID, task: dict[str, Any], delay_s: float | None
    ) -> Row: ...

    async def update_task(self, org_id: UUID, task_id: UUID, plan: Any) -> Row: ...

    async def delete_task(self, org_id: UUID, task_id: UUID) -> int: ...

    async def insert_batch(
        self, org_id: UUID, task: dict[str, Any], delay_s: float | None, bodies: Sequence[Any]
    ) -> Row: ...

    async def sync_tasks(
        self,
        org_id: UUID,
        names: Sequence[str],
        decide: Decide,
        *,
        delete_removed: bool,
        dry_run: bool,
    ) -> TaskSyncResult: ...
