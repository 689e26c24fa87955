"""``GET /api/v1/cron/preview``: the next runs of an expression, as the scheduler will fire them
(same evaluator, same DST policy)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from quart import Blueprint, jsonify, request
from quart_schema import document_querystring, document_response

from runlater.cron import CronSchedule
from runlater.errors import InvalidCron
from runlater.schemas.common import Data
from runlater.schemas.cron import MAX_PREVIEW_COUNT, CronPreview, CronPreviewQuery
from runlater.web import serialize
from runlater.web.context import services
from runlater.web.errors import validation_error

bp = Blueprint("cron", __name__)


def _count() -> int:
    raw = request.args.get("count", "5")
    try:
        count = int(raw)
    except ValueError:
        raise validation_error({"count": ["must be an integer"]}) from None
    if not 1 <= count <= MAX_PREVIEW_COUNT:
        raise validation_error({"count": [f"must be between 1 and {MAX_PREVIEW_COUNT}"]})
    return count


def _after() -> datetime:
    raw = request.args.get("after")
    if raw is None:
        return services().clock.now()
    try:
        after = datetime.fromisoformat(raw.strip().replace(" ", "+"))  # '+' arrives as a space
    except ValueError:
        raise validation_error({"after": ["must be an ISO-8601 timestamp"]}) from None
    if after.tzinfo is None or after.utcoffset() is None:
        raise validation_error({"after": ["must include an offset, e.g. Z or +01:00"]})
    return after


@bp.get("/cron/preview")
@document_querystring(CronPreviewQuery)
@document_response(Data[CronPreview], 200)
async def preview() -> Any:
    """The next runs of a cron expression in a time zone; an invalid one is 422."""
    expression = request.args.get("expression")
    if not expression:
        raise validation_error({"expression": ["is required"]})
    timezone = request.args.get("timezone") or "UTC"
    count, after = _count(), _after()
    try:
        schedule = CronSchedule(expression, timezone)
    except InvalidCron as exc:
        field = "timezone" if "zone" in str(exc).lower() else "expression"
        raise validation_error({field: [str(exc)]}) from None
    try:
        runs = _runs(schedule, after, count)
        interval = schedule.interval_minutes(after)
    except (InvalidCron, OverflowError, ValueError) as exc:  # near the ends of datetime
        problem = f"no {count} runs can be computed after it: {exc}"
        raise validation_error({"after": [problem]}) from None
    return jsonify(
        {"data": {"next_runs": [serialize.ts(r) for r in runs], "interval_minutes": interval}}
    )


def _runs(schedule: CronSchedule, after: datetime, count: int) -> list[datetime]:
    runs: list[datetime] = []
    at = after
    for _ in range(count):
        at = schedule.next_after(at)
        runs.append(at)
    return runs
