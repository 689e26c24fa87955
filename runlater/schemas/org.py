"""OpenAPI models of ``/api/v1/org``: the caller's organization, its plan and usage, and a
rotated webhook secret."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

WEBHOOK_SECRET_PATTERN = r"^whsec_[A-Za-z0-9+/]+=*$"
WEBHOOK_SECRET_EXAMPLE = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw2Gq6QgJ9c3g="

USAGE_EXAMPLE: dict[str, Any] = {
    "executions_this_month": 8421,
    "limit": 10000,
    "hard_limit": True,
    "warning": False,
    "period_start": "2026-06-01T00:00:00.000Z",
    "resets_at": "2026-07-01T00:00:00.000Z",
}
LIMITS_EXAMPLE: dict[str, Any] = {"min_cron_interval_minutes": 60, "retention_days": 7}


class Usage(BaseModel):
    """Executions created this UTC calendar month, against the plan's monthly limit."""

    model_config = ConfigDict(json_schema_extra={"examples": [USAGE_EXAMPLE]})

    executions_this_month: int = Field(
        ge=0,
        description=(
            "executions created this month: every attempt (retries too) of one-time and cron "
            "tasks; runs cancelled by the limit do not count"
        ),
    )
    limit: int = Field(description="the plan's monthly executions")
    hard_limit: bool = Field(
        description=(
            "true: at the limit new work is refused with 422 `limit_exceeded` and cron runs "
            "are recorded as cancelled (retries of accepted work still run); false: the limit "
            "only raises `warning`"
        )
    )
    warning: bool = Field(description="the month's executions have reached the limit")
    period_start: datetime = Field(description="start of the counted month (UTC)")
    resets_at: datetime = Field(description="when the count starts again from zero")


class PlanLimits(BaseModel):
    """The other limits of the organization's plan."""

    model_config = ConfigDict(json_schema_extra={"examples": [LIMITS_EXAMPLE]})

    min_cron_interval_minutes: int = Field(
        ge=1, description="a cron task may not run more often (else 422 `limit_exceeded`)"
    )
    retention_days: int = Field(
        ge=1, description="finished executions are deleted this many days after they finish"
    )


class Organization(BaseModel):
    """The organization the API key belongs to."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "0190f1c2-9c6d-7e5f-a012-3c4d5e6f7081",
                    "name": "Acme",
                    "slug": "acme",
                    "tier": "free",
                    "webhook_secret": WEBHOOK_SECRET_EXAMPLE,
                    "usage": USAGE_EXAMPLE,
                    "limits": LIMITS_EXAMPLE,
                }
            ]
        }
    )

    id: UUID
    name: str
    slug: str
    tier: Literal["free", "pro"]
    webhook_secret: str = Field(
        pattern=WEBHOOK_SECRET_PATTERN,
        description="signs every delivery (X-Runlater-Signature and Standard Webhooks headers)",
    )
    usage: Usage
    limits: PlanLimits


class RotatedSecret(BaseModel):
    """The new webhook secret; the previous one keeps signing alongside it until it expires."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "webhook_secret": WEBHOOK_SECRET_EXAMPLE,
                    "previous_secret_expires_at": "2026-06-02T09:30:00.000Z",
                }
            ]
        }
    )

    webhook_secret: str = Field(pattern=WEBHOOK_SECRET_PATTERN)
    previous_secret_expires_at: datetime = Field(
        description="until then each delivery carries both signatures, the new one first"
    )
