"""Plain data passed between the store and the engine (no driver types leak out)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID


@dataclass(frozen=True, slots=True)
class ClaimedExecution:
    """An execution this node holds a lease on, with what is needed to deliver it."""

    id: UUID
    lease_token: UUID
    task_id: UUID
    organization_id: UUID
    attempt: int
    root_execution_id: UUID
    scheduled_for: datetime
    schedule_type: str
    url: str
    method: str
    headers: dict[str, str]
    body: str | None
    timeout_ms: int
    retry_attempts: int
    expected_status_codes: str | None = None
    expected_body_pattern: str | None = None
    signing_secrets: tuple[str, ...] | list[str] = ()  # newest first
    next_run_at: datetime | None = None  # a cron task's next scheduled run (no retry past it)
    body_bytes: bytes | None = None  # a body that is not UTF-8 text, sent byte-exact
    origin: str = "api"  # the front door that made the task: api | inbound | qstash
    qstash_signing_key: str | None = None  # set for 'qstash' tasks: signs Upstash-Signature


@dataclass(frozen=True, slots=True)
class Outcome:
    """The recorded result of one delivery attempt; ``retry_in_s`` set schedules the next one."""

    execution_id: UUID
    lease_token: UUID
    status: str  # success | failed | timeout
    status_code: int | None
    duration_ms: int
    response_body: str | None
    error_message: str | None
    request_headers: dict[str, str] | None = None
    response_headers: dict[str, str] | None = None
    retry_in_s: float | None = None
    request_method: str | None = None
    request_url: str | None = None
    request_body: str | None = None
    retry_after_s: float | None = None  # the target's Retry-After, for per-host backoff
    # Whose execution: a batch that meets a lock is retried one organization at a time.
    organization_id: UUID | None = None


@dataclass(frozen=True, slots=True)
class DueCronTask:
    id: UUID
    organization_id: UUID
    cron_expression: str
    timezone: str
    next_run_at: datetime
    interval_minutes: int


@dataclass(frozen=True, slots=True)
class CronAdvance:
    """Move one task's ``next_run_at`` from ``old_next`` to ``new_next`` and record its runs."""

    task_id: UUID
    old_next: datetime
    new_next: datetime
    runs: tuple[tuple[datetime, str], ...]  # (scheduled_for, 'pending' | 'missed')


@dataclass(frozen=True, slots=True)
class AdvanceResult:
    advanced: int
    created: int
    missed: int
    # Due tasks whose row another transaction held (a PATCH in flight, perhaps on a node that
    # is partitioned): not waited for; they are due again at the next pass.
    skipped: tuple[UUID, ...] = ()


@dataclass(frozen=True, slots=True)
class RescueResult:
    requeued: int
    failed: int  # interrupted too often
    cancelled: int = 0  # its task was deleted meanwhile


@dataclass(frozen=True, slots=True)
class ApiKeyOwner:
    key_row_id: UUID
    organization_id: UUID
    key_hash: str
    revoked: bool
    tier: str


Row = dict[str, Any]


@dataclass(frozen=True, slots=True)
class CallbackResult:
    callback_id: UUID
    lease_token: UUID
    ok: bool
    status_code: int | None
    error: str | None
    retry_in_s: float
