"""``/v2/schedules``: a schedule is a cron task of origin 'qstash' (``scheduleId`` = task id);
paused = disabled. ``Upstash-Cron`` takes a ``CRON_TZ=Zone`` prefix for its time zone, and the
cron runs with Runlater's DST policy (``runlater/cron.py``)."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, jsonify

from runlater.domain import qstash
from runlater.web.auth import org_id
from runlater.web.qstash import responses
from runlater.web.qstash.common import (
    destination,
    header_pairs,
    qstash_task,
    raw_body,
    store,
    tasks,
)

bp = Blueprint("schedules", __name__)


@bp.post("/schedules/<path:target>")
async def create_schedule(target: str) -> Any:
    """Create a schedule (or, with ``Upstash-Schedule-Id``, replace that schedule)."""
    body = await raw_body()
    draft = qstash.parse_schedule(destination(2), header_pairs(), body)
    if draft.schedule_id is not None:
        current = await qstash_task(org_id(), str(draft.schedule_id), "cron")
        await tasks().update(org_id(), current["id"], qstash.replacement(draft))
        return jsonify({"scheduleId": str(current["id"])}), 200
    created = await tasks().create(org_id(), draft.payload, origin="qstash", body_bytes=draft.body)
    return jsonify({"scheduleId": str(created.value["id"])}), 201


@bp.get("/schedules")
async def list_schedules() -> Any:
    """The schedules made through /v2, oldest first."""
    rows = await store().qstash_schedules(org_id())
    return jsonify([responses.schedule(r) for r in rows])


@bp.get("/schedules/<schedule_id>")
async def get_schedule(schedule_id: str) -> Any:
    """A schedule made through /v2."""
    return jsonify(responses.schedule(await qstash_task(org_id(), schedule_id, "cron")))


@bp.delete("/schedules/<schedule_id>")
async def delete_schedule(schedule_id: str) -> Any:
    """Delete a schedule; a run already started finishes, its history stays."""
    row = await qstash_task(org_id(), schedule_id, "cron")
    await tasks().delete(org_id(), row["id"])
    return "", 200


async def _enable(schedule_id: str, enabled: bool) -> Any:
    row = await qstash_task(org_id(), schedule_id, "cron")
    await tasks().update(org_id(), row["id"], {"enabled": enabled})
    return "", 200


@bp.patch("/schedules/<schedule_id>/pause")
async def pause_schedule(schedule_id: str) -> Any:
    """Pause: no new runs until resumed."""
    return await _enable(schedule_id, False)


@bp.patch("/schedules/<schedule_id>/resume")
async def resume_schedule(schedule_id: str) -> Any:
    """Resume: the next run is the next one after now."""
    return await _enable(schedule_id, True)
