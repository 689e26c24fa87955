"""Creating organizations, keys and tasks for tests through the real store."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

from runlater import apikeys
from runlater.store.postgres import Store
from runlater.store.records import ClaimedExecution


async def make_org(store: Store, name: str = "Acme", tier: str = "pro") -> tuple[UUID, str]:
    """A new organization and a working API key for it."""
    key = apikeys.generate()
    row, _ = await store.bootstrap(
        org_name=name,
        slug=name.lower().replace(" ", "-"),
        tier=tier,
        secret=apikeys.new_webhook_secret(),
        email=f"owner@{name.lower()}.test",
        key_id=key.key_id,
        key_hash=key.key_hash,
    )
    return row["id"], key.full


def once_task(url: str, **extra: Any) -> dict[str, Any]:
    row = {
        "name": "t",
        "url": url,
        "method": "POST",
        "headers": {},
        "body": "{}",
        "schedule_type": "once",
        "timezone": "UTC",
        "timeout_ms": 5000,
        "retry_attempts": 0,
        "enabled": True,
    }
    row.update(extra)
    return row


def cron_task(
    url: str,
    expression: str,
    next_run_at: str,
    *,
    interval_minutes: int = 1,
    timezone: str = "UTC",
    **extra: Any,
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "name": "c",
        "url": url,
        "method": "GET",
        "headers": {},
        "body": None,
        "schedule_type": "cron",
        "cron_expression": expression,
        "timezone": timezone,
        "interval_minutes": interval_minutes,
        "next_run_at": next_run_at,
        "timeout_ms": 5000,
        "retry_attempts": 0,
        "enabled": True,
    }
    row.update(extra)
    return row


def claimed_execution(url: str, **extra: Any) -> ClaimedExecution:
    """An execution as a worker holds it after a claim, for driving the Deliverer directly."""
    fields: dict[str, Any] = {
        "id": uuid4(),
        "lease_token": uuid4(),
        "task_id": uuid4(),
        "organization_id": uuid4(),
        "attempt": 1,
        "root_execution_id": uuid4(),
        "scheduled_for": datetime.now(UTC),
        "schedule_type": "once",
        "url": url,
        "method": "POST",
        "headers": {"Content-Type": "application/json"},
        "body": '{"hello": "target"}',
        "timeout_ms": 2000,
        "retry_attempts": 0,
    }
    fields.update(extra)
    return ClaimedExecution(**fields)
