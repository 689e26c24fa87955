"""The shape of HTTP uptime check payloads (``POST/PATCH /uptime-checks``) and answers."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, field_validator

from runlater.schemas.tasks import _http_url, check_status_codes, validate_model
from runlater.schemas.unknown import read_body

_URL_PATTERN = r"^[Hh][Tt][Tt][Pp][Ss]?://[^\s/?#]+\S*$"


class UptimeCheckFields(BaseModel):
    """The writable fields of an HTTP uptime check. A new one needs ``name``, ``url`` and
    ``interval_seconds`` (at least 30 s on pro, 300 s on free)."""

    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "examples": [
                {
                    "name": "homepage",
                    "url": "https://example.com/",
                    "interval_seconds": 60,
                    "keyword": "Welcome",
                }
            ]
        },
    )

    name: str | None = Field(default=None, min_length=1, max_length=200)
    url: str | None = Field(default=None, max_length=2048, pattern=_URL_PATTERN)
    method: Literal["GET", "HEAD", "POST"] | None = None
    interval_seconds: StrictInt | None = Field(default=None, ge=30, le=86400)
    timeout_ms: StrictInt | None = Field(default=None, ge=1000, le=60000)
    expected_status_codes: str | None = Field(
        default=None,
        max_length=200,
        description="comma-separated statuses that count as up (default: any 2xx)",
    )
    keyword: str | None = Field(
        default=None, min_length=1, max_length=500, description="must appear in the response"
    )
    failure_threshold: StrictInt | None = Field(
        default=None, ge=1, le=10, description="down after this many failures in a row (2)"
    )
    enabled: StrictBool | None = None
    status: Literal["paused", "new"] | None = Field(
        default=None, description="`paused` stops checking; `new` resumes"
    )
    notify_on_failure: StrictBool | None = None
    notify_on_recovery: StrictBool | None = None
    on_failure_url: str | None = Field(default=None, max_length=2048, pattern=_URL_PATTERN)
    on_recovery_url: str | None = Field(default=None, max_length=2048, pattern=_URL_PATTERN)
    alert_after: StrictInt | None = Field(default=None, ge=1, le=100)

    @field_validator("method", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("url", "on_failure_url", "on_recovery_url", mode="before")
    @classmethod
    def _urls(cls, value: Any) -> Any:
        return _http_url(value) if isinstance(value, str) else value

    @field_validator("expected_status_codes")
    @classmethod
    def _codes(cls, value: str | None) -> str | None:
        return check_status_codes(value)


def parse_uptime_check(payload: Any) -> tuple[set[str], UptimeCheckFields]:
    """The keys given and the validated fields (422 naming each problem)."""
    data = read_body(payload, "uptime_check", UptimeCheckFields.model_fields)
    return set(data), validate_model(UptimeCheckFields, data)


class Uptime(BaseModel):
    h24: float | None = Field(alias="24h")
    d7: float | None = Field(alias="7d")
    d30: float | None = Field(alias="30d")
    d90: float | None = Field(alias="90d")


class UptimeCheck(BaseModel):
    """An HTTP uptime check: ``url`` called every ``interval_seconds``."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "0190f1c2-7a4b-7c3d-9e8f-1a2b3c4d5e90",
                    "name": "homepage",
                    "url": "https://example.com/",
                    "method": "GET",
                    "interval_seconds": 60,
                    "timeout_ms": 10000,
                    "expected_status_codes": None,
                    "keyword": "Welcome",
                    "failure_threshold": 2,
                    "status": "up",
                    "enabled": True,
                    "badge_token": "Zb3x8qN2rT5wY7zA1cD4eG",
                    "last_checked_at": "2026-01-02T10:00:00.000Z",
                    "last_response_ms": 182,
                    "last_status_code": 200,
                    "last_error": None,
                    "next_check_at": "2026-01-02T10:01:00.000Z",
                    "uptime": {"24h": 100.0, "7d": 99.931, "30d": 99.98, "90d": 99.99},
                    "notify_on_failure": True,
                    "notify_on_recovery": True,
                    "on_failure_url": None,
                    "on_recovery_url": None,
                    "alert_after": 1,
                    "inserted_at": "2025-12-01T10:00:00.000Z",
                    "updated_at": "2025-12-01T10:00:00.000Z",
                }
            ]
        }
    )

    id: UUID
    name: str
    url: str
    method: str
    interval_seconds: int
    timeout_ms: int
    expected_status_codes: str | None
    keyword: str | None
    failure_threshold: int
    status: Literal["new", "up", "down", "paused"]
    enabled: bool
    badge_token: str
    last_checked_at: datetime | None
    last_response_ms: int | None
    last_status_code: int | None
    last_error: str | None
    next_check_at: datetime
    uptime: Uptime = Field(description="percent of checks that succeeded (null: none yet)")
    notify_on_failure: bool
    notify_on_recovery: bool
    on_failure_url: str | None
    on_recovery_url: str | None
    alert_after: int
    inserted_at: datetime
    updated_at: datetime


class UptimeResultOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "checked_at": "2026-01-02T10:00:00.000Z",
                    "ok": False,
                    "status_code": 503,
                    "response_ms": 88,
                    "error": "HTTP 503",
                }
            ]
        }
    )

    checked_at: datetime
    ok: bool
    status_code: int | None
    response_ms: int | None
    error: str | None
