"""Runlater rows as the JSON objects the ``qstash`` SDK parses (camelCase, times in unix ms)."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from runlater.domain.qstash import cron_header

# A Runlater queue runs one message at a time.
PARALLELISM = 1


def ms(value: datetime | None) -> int | None:
    return None if value is None else int(value.timestamp() * 1000)


def _headers(raw: dict[str, str] | None) -> dict[str, list[str]]:
    return {name: [value] for name, value in (raw or {}).items()}


def _body(row: dict[str, Any]) -> dict[str, Any]:
    if row.get("body") is not None:
        return {"body": row["body"]}
    if row.get("body_bytes") is not None:
        return {"bodyBase64": base64.b64encode(bytes(row["body_bytes"])).decode()}
    return {}


def _optional(row: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, column in (
        ("callback", "callback_url"),
        ("failureCallback", "failure_callback_url"),
        ("queueName", "queue"),
    ):
        if row.get(column) is not None:
            out[key] = row[column]
    return out


def message(row: dict[str, Any]) -> dict[str, Any]:
    """A one-time task of origin 'qstash' as a QStash message (``messageId`` = task id)."""
    return {
        "messageId": str(row["id"]),
        "url": row["url"],
        "method": row["method"],
        "header": _headers(row.get("headers")),
        **_body(row),
        "maxRetries": row["retry_attempts"],
        "notBefore": ms(row.get("scheduled_at")) or ms(row["inserted_at"]),
        "createdAt": ms(row["inserted_at"]),
        "label": row["name"],
        **_optional(row),
    }


def schedule(row: dict[str, Any]) -> dict[str, Any]:
    """A cron task of origin 'qstash' as a QStash schedule (``scheduleId`` = task id)."""
    out: dict[str, Any] = {
        "scheduleId": str(row["id"]),
        "destination": row["url"],
        "cron": cron_header(row["cron_expression"], row["timezone"]),
        "createdAt": ms(row["inserted_at"]),
        "method": row["method"],
        "header": _headers(row.get("headers")),
        **_body(row),
        "retries": row["retry_attempts"],
        "timeout": row["timeout_ms"] // 1000,
        "isPaused": not row["enabled"],
        "label": row["name"],
        **_optional(row),
    }
    if row.get("next_run_at") is not None:
        out["nextScheduleTime"] = ms(row["next_run_at"])
    if row.get("last_execution_at") is not None:
        out["lastScheduleTime"] = ms(row["last_execution_at"])
    return out


def queue(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": row["name"],
        "parallelism": PARALLELISM,
        "createdAt": ms(row["inserted_at"]),
        "updatedAt": ms(row["updated_at"]),
        "lag": row["lag"],
        "paused": row["paused"],
    }
