"""Turning store rows into the API's JSON objects (timestamps as ISO-8601 UTC with ``Z``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

TASK_FIELDS = (
    "id",
    "name",
    "url",
    "method",
    "headers",
    "body",
    "schedule_type",
    "cron_expression",
    "timezone",
    "scheduled_at",
    "next_run_at",
    "enabled",
    "timeout_ms",
    "retry_attempts",
    "callback_url",
    "failure_callback_url",
    "expected_status_codes",
    "expected_body_pattern",
    "queue",
    "notify_on_failure",
    "notify_on_recovery",
    "on_failure_url",
    "on_recovery_url",
    "alert_after",
    "badge_token",
    "origin",
    "last_execution_at",
    "last_execution_status",
    "inserted_at",
    "updated_at",
)
EXECUTION_FIELDS = (
    "id",
    "task_id",
    "status",
    "attempt",
    "scheduled_for",
    "started_at",
    "finished_at",
    "status_code",
    "duration_ms",
    "error_message",
)


def ts(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _value(value: Any) -> Any:
    if isinstance(value, datetime):
        return ts(value)
    if isinstance(value, UUID):
        return str(value)
    return value


def value(raw: Any) -> Any:
    """A column's value as JSON shows it (UUIDs and times as strings)."""
    return _value(raw)


def pick(row: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    return {name: _value(row.get(name)) for name in fields}


def task(row: dict[str, Any]) -> dict[str, Any]:
    return pick(row, TASK_FIELDS)


def execution(row: dict[str, Any]) -> dict[str, Any]:
    return pick(row, EXECUTION_FIELDS)


def execution_detail(row: dict[str, Any]) -> dict[str, Any]:
    data = execution(row)
    data["request"] = {
        "method": row.get("request_method"),
        "url": row.get("request_url"),
        "headers": row.get("request_headers"),
        "body": row.get("request_body"),
    }
    data["response"] = (
        None
        if row.get("status_code") is None
        else {
            "status": row.get("status_code"),
            "headers": row.get("response_headers"),
            "body": row.get("response_body"),
        }
    )
    return data


MONITOR_FIELDS = (
    "id",
    "name",
    "ping_token",
    "ping_url",
    "badge_token",
    "schedule_type",
    "interval_seconds",
    "cron_expression",
    "timezone",
    "grace_period_seconds",
    "status",
    "enabled",
    "notify_on_failure",
    "notify_on_recovery",
    "on_failure_url",
    "on_recovery_url",
    "alert_after",
    "last_ping_at",
    "next_expected_at",
    "started_at",
    "last_duration_ms",
    "inserted_at",
    "updated_at",
)
PING_FIELDS = (
    "id",
    "kind",
    "exit_status",
    "rid",
    "method",
    "source_ip",
    "user_agent",
    "body",
    "body_truncated",
    "duration_ms",
    "received_at",
)


def monitor(row: dict[str, Any], base_url: str) -> dict[str, Any]:
    """A monitor; ``ping_url`` is made from the node's public base URL."""
    return pick({**row, "ping_url": f"{base_url}/ping/{row['ping_token']}"}, MONITOR_FIELDS)


def monitor_ping(row: dict[str, Any]) -> dict[str, Any]:
    body = bytes(row["body"]).decode("utf-8", errors="replace").replace("\x00", "\ufffd")
    return pick({**row, "body": body}, PING_FIELDS)
