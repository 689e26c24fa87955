"""OpenAPI models of ``GET /api/v1/cron/preview``."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

MAX_PREVIEW_COUNT = 50


class CronPreviewQuery(BaseModel):
    expression: str = Field(
        min_length=1,
        description="5-field cron expression or a macro such as @daily",
        examples=["0 9 * * 1-5"],
    )
    timezone: str = Field(
        default="UTC", max_length=64, description="IANA time zone", examples=["Europe/Amsterdam"]
    )
    count: int = Field(default=5, ge=1, le=MAX_PREVIEW_COUNT, description="how many runs")
    after: datetime | None = Field(
        default=None,
        description="runs strictly after this time (ISO-8601 with offset); default now",
    )


class CronPreview(BaseModel):
    """The next runs, exactly as the scheduler will fire them (DST policy included)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "next_runs": [
                        "2026-01-05T08:00:00.000Z",
                        "2026-01-06T08:00:00.000Z",
                        "2026-01-07T08:00:00.000Z",
                    ],
                    "interval_minutes": 1440,
                }
            ]
        }
    )

    next_runs: list[datetime] = Field(min_length=1, max_length=MAX_PREVIEW_COUNT)
    interval_minutes: int = Field(
        ge=1, description="smallest gap between consecutive runs among the next 10"
    )
