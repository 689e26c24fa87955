"""The shape of heartbeat monitor payloads (``POST/PATCH /monitors``, sync items) and answers.

``MonitorFields`` is both the validator of a request and its OpenAPI schema. What a payload
means (defaults, the schedule's columns, what an edit does to the watch) is
``runlater.domain.monitors``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, field_validator

from runlater.schemas.tasks import _http_url, validate_model
from runlater.schemas.unknown import read_body

MonitorStatus = Literal["new", "up", "down", "paused"]
PingKind = Literal["success", "fail", "start", "log"]
_URL_PATTERN = r"^[Hh][Tt][Tt][Pp][Ss]?://[^\s/?#]+\S*$"
_ALIASES = (("cron", "cron_expression"), ("grace_seconds", "grace_period_seconds"))


class MonitorFields(BaseModel):
    """The writable fields of a heartbeat monitor. A new monitor needs ``name`` and exactly one
    of ``interval_seconds`` and ``cron_expression``."""

    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "examples": [
                {
                    "name": "nightly backup",
                    "cron_expression": "0 3 * * *",
                    "timezone": "Europe/Berlin",
                },
                {"name": "queue worker alive", "interval_seconds": 300, "grace_period_seconds": 60},
            ]
        },
    )

    name: str | None = Field(default=None, min_length=1, max_length=200)
    interval_seconds: StrictInt | None = Field(
        default=None, ge=60, le=604800, description="a ping is expected this often (60 s to 7 d)"
    )
    cron_expression: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="a ping is expected at each run of this cron expression (alias `cron`)",
    )
    timezone: str | None = Field(
        default=None, max_length=64, description="IANA zone of the cron expression (default UTC)"
    )
    grace_period_seconds: StrictInt | None = Field(
        default=None,
        ge=0,
        le=3600,
        description="how late a ping may be, and how long a started run may take (default 300)",
    )
    enabled: StrictBool | None = Field(
        default=None, description="a disabled monitor answers pings with 410 and is not watched"
    )
    status: Literal["paused", "new"] | None = Field(
        default=None,
        description="`paused` stops watching until the next ping; `new` resumes, waiting for "
        "the first ping",
    )
    notify_on_failure: StrictBool | None = None
    notify_on_recovery: StrictBool | None = None
    on_failure_url: str | None = Field(default=None, max_length=2048, pattern=_URL_PATTERN)
    on_recovery_url: str | None = Field(default=None, max_length=2048, pattern=_URL_PATTERN)
    alert_after: StrictInt | None = Field(
        default=None, ge=1, le=100, description="consecutive failures before a notification"
    )

    @field_validator("on_failure_url", "on_recovery_url", mode="before")
    @classmethod
    def _urls(cls, value: Any) -> Any:
        return _http_url(value) if isinstance(value, str) else value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            ZoneInfo(value.strip())
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise ValueError(f"unknown time zone {value!r} (expected an IANA name)") from None
        return value.strip()


def parse_monitor(payload: Any) -> tuple[dict[str, Any], MonitorFields]:
    """The body's keys (aliases merged) and its validated fields, or 422 naming each problem.
    A body may be wrapped as ``{"monitor": {...}}``."""
    data = read_body(payload, "monitor", MonitorFields.model_fields, _ALIASES)
    return data, validate_model(MonitorFields, data)


# ------------------------------------------------------------------------------ answers


MONITOR_EXAMPLE: dict[str, Any] = {
    "id": "0190f1c2-7a4b-7c3d-9e8f-1a2b3c4d5e70",
    "name": "nightly backup",
    "ping_token": "5f0c3a52-8d1e-4b7a-9c2f-3e4d5a6b7c8d",
    "ping_url": "https://runlater.example/ping/5f0c3a52-8d1e-4b7a-9c2f-3e4d5a6b7c8d",
    "badge_token": "q3Vb8xN2rT5wY7zA1cD4eF",
    "schedule_type": "cron",
    "interval_seconds": None,
    "cron_expression": "0 3 * * *",
    "timezone": "Europe/Berlin",
    "grace_period_seconds": 300,
    "status": "up",
    "enabled": True,
    "notify_on_failure": True,
    "notify_on_recovery": True,
    "on_failure_url": None,
    "on_recovery_url": None,
    "alert_after": 1,
    "last_ping_at": "2026-01-02T02:04:12.500Z",
    "next_expected_at": "2026-01-03T02:00:00.000Z",
    "started_at": None,
    "last_duration_ms": 252500,
    "inserted_at": "2025-12-01T10:00:00.000Z",
    "updated_at": "2026-01-02T02:04:12.500Z",
}
PING_EXAMPLE: dict[str, Any] = {
    "id": "0190f1c2-7a4b-7c3d-9e8f-1a2b3c4d5e71",
    "kind": "success",
    "exit_status": 0,
    "rid": "7d1c2b3a-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
    "method": "POST",
    "source_ip": "203.0.113.7",
    "user_agent": "curl/8.5.0",
    "body": "backup done: 1.2 GB",
    "body_truncated": False,
    "duration_ms": 252500,
    "received_at": "2026-01-02T02:04:12.500Z",
}


class Monitor(BaseModel):
    """A heartbeat monitor: it expects pings at ``ping_url`` and goes down when one is late."""

    model_config = ConfigDict(json_schema_extra={"examples": [MONITOR_EXAMPLE]})

    id: UUID
    name: str
    ping_token: UUID = Field(description="the secret part of the ping URL")
    ping_url: str = Field(
        description="GET, POST or HEAD it; add /start, /fail, /<exit status> or /log"
    )
    badge_token: str = Field(description="its public badge: /badge/{badge_token}/status.svg")
    schedule_type: Literal["interval", "cron"]
    interval_seconds: int | None
    cron_expression: str | None
    timezone: str
    grace_period_seconds: int
    status: MonitorStatus
    enabled: bool
    notify_on_failure: bool
    notify_on_recovery: bool
    on_failure_url: str | None
    on_recovery_url: str | None
    alert_after: int
    last_ping_at: datetime | None
    next_expected_at: datetime | None = Field(description="null until the first finished run")
    started_at: datetime | None = Field(description="a run reported started and not finished")
    last_duration_ms: int | None = Field(description="the last finished run's duration")
    inserted_at: datetime
    updated_at: datetime


class MonitorPing(BaseModel):
    """One ping a monitor received."""

    model_config = ConfigDict(json_schema_extra={"examples": [PING_EXAMPLE]})

    id: UUID
    kind: PingKind
    exit_status: int | None
    rid: UUID | None
    method: str
    source_ip: str | None
    user_agent: str | None
    body: str = Field(description="the request body as text (UTF-8, invalid bytes replaced)")
    body_truncated: bool = Field(description="the body was longer than 100 KiB; its start is kept")
    duration_ms: int | None = Field(description="start to finish, when this ping finished a run")
    received_at: datetime
