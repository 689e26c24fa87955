"""What a monitor payload means: a new monitor's row, an edit's columns, a schedule's upcoming
instants, and what a ping URL asks for.

The state machine itself is ``runlater.domain.heartbeat`` (the reference the ping statement
and the Monitor actor are tested against). A cron monitor keeps its next instants in its row
(``cron_upcoming``, see migration 016) so that a ping is one statement; they are computed
here, from a little before now, and topped up by the Monitor from ``cron_refresh_at``.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from runlater.cron import CronSchedule
from runlater.domain.heartbeat import PingKind, Schedule, watch_deadline
from runlater.errors import InvalidCron, invalid
from runlater.schemas.monitors import parse_monitor

Row = dict[str, Any]

DEFAULT_GRACE_S = 300
# The upcoming instants kept for a cron monitor: up to this many, within the horizon, from a
# little before now (a ping stamped slightly earlier than the refresh still finds its next).
UPCOMING_COUNT = 64
UPCOMING_HORIZON = timedelta(days=800)
UPCOMING_LOOKBACK = timedelta(minutes=10)
_NOT_NULL = ("name", "timezone", "grace_period_seconds", "enabled", "alert_after")
_NOTIFY_DEFAULTS = {
    "notify_on_failure": True,
    "notify_on_recovery": True,
    "on_failure_url": None,
    "on_recovery_url": None,
    "alert_after": 1,
}


def cron_schedule(expression: str, timezone: str) -> CronSchedule:
    """The schedule, or 422 naming the field at fault."""
    try:
        return CronSchedule(expression, timezone)
    except InvalidCron as exc:
        field = "timezone" if "zone" in str(exc).lower() else "cron_expression"
        raise invalid({field: [str(exc)]}) from None


def upcoming_columns(schedule: CronSchedule, now: datetime) -> Row:
    """``cron_upcoming`` and ``cron_refresh_at`` of a cron monitor, computed at ``now``."""
    start = now - UPCOMING_LOOKBACK
    instants = schedule.runs_between(start, now + UPCOMING_HORIZON, limit=UPCOMING_COUNT)
    if not instants:
        raise invalid({"cron_expression": ["has no run in the next 800 days"]})
    future = [t for t in instants if t > now] or instants
    return {
        "cron_upcoming": [t.isoformat() for t in instants],
        "cron_refresh_at": future[(len(future) - 1) // 2].isoformat(),
    }


def schedule_of(row: Row) -> Schedule:
    """A stored monitor's schedule (``heartbeat.Schedule``)."""
    grace = timedelta(seconds=row["grace_period_seconds"])
    if row["schedule_type"] == "interval":
        return Schedule(grace, interval=timedelta(seconds=row["interval_seconds"]))
    return Schedule(grace, cron=CronSchedule(row["cron_expression"], row["timezone"]))


def _schedule_columns(
    interval_s: int | None, expression: str | None, timezone: str, now: datetime
) -> Row:
    if (interval_s is None) == (expression is None):
        message = "give exactly one of interval_seconds and cron_expression"
        raise invalid({"interval_seconds": [message], "cron_expression": [message]})
    if interval_s is not None:
        return {
            "schedule_type": "interval",
            "interval_seconds": interval_s,
            "cron_expression": None,
            "cron_upcoming": None,
            "cron_refresh_at": None,
            "timezone": timezone,
        }
    assert expression is not None
    schedule = cron_schedule(expression, timezone)
    return {
        "schedule_type": "cron",
        "interval_seconds": None,
        "cron_expression": schedule.expression,
        "timezone": schedule.timezone,
        **upcoming_columns(schedule, now),
    }


def draft_monitor(payload: Any, now: datetime) -> Row:
    """The row of a new monitor from a ``POST /monitors`` body (tokens included)."""
    _, fields = parse_monitor(payload)
    if fields.name is None:
        raise invalid({"name": ["is required"]})
    if fields.status is not None:
        raise invalid({"status": ["a new monitor starts as new; pause it after creating it"]})
    row: Row = {"name": fields.name}
    row.update(
        _schedule_columns(
            fields.interval_seconds, fields.cron_expression, fields.timezone or "UTC", now
        )
    )
    row["grace_period_seconds"] = (
        DEFAULT_GRACE_S if fields.grace_period_seconds is None else fields.grace_period_seconds
    )
    row["enabled"] = True if fields.enabled is None else fields.enabled
    for key, default in _NOTIFY_DEFAULTS.items():
        value = getattr(fields, key)
        row[key] = default if value is None else value
    row.update(status="new", ping_token=str(uuid4()), badge_token=new_badge_token())
    return row


def new_badge_token() -> str:
    """An unguessable, URL-safe badge token (128 random bits)."""
    return secrets.token_urlsafe(16)


def plan_monitor_edit(payload: Any, now: datetime) -> Callable[[Row], Row]:
    """What a ``PATCH /monitors/{id}`` body writes, decided from the locked current row.

    A new schedule or grace moves the watch: the next ping is expected by the new schedule
    from now. Pausing stops the watch; ``status: new`` and re-enabling start the monitor
    afresh (it waits for its first ping again, as a new one does).
    """
    _, fields = parse_monitor(payload)
    changes = {k: getattr(fields, k) for k in fields.model_fields_set}
    for required in _NOT_NULL:
        if required in changes and changes[required] is None:
            raise invalid({required: ["cannot be null"]})
    for key in ("notify_on_failure", "notify_on_recovery"):
        if key in changes and changes[key] is None:
            changes[key] = _NOTIFY_DEFAULTS[key]  # null: back to the default, as on create

    def plan(current: Row) -> Row:
        out = dict(current)
        out.update({k: v for k, v in changes.items() if k not in _SCHEDULE_KEYS})
        schedule_changed = any(k in changes for k in _SCHEDULE_KEYS)
        if schedule_changed:
            interval_s = changes.get("interval_seconds", current["interval_seconds"])
            expression = changes.get("cron_expression", current["cron_expression"])
            if "interval_seconds" in changes and "cron_expression" not in changes:
                expression = None if interval_s is not None else expression
            if "cron_expression" in changes and "interval_seconds" not in changes:
                interval_s = None if expression is not None else interval_s
            timezone = changes.get("timezone") or current["timezone"]
            out.update(_schedule_columns(interval_s, expression, timezone, now))
        restart = changes.get("status") == "new" or (
            changes.get("enabled") is True and not current["enabled"]
        )
        if restart:
            out.update(status="new", next_expected_at=None, started_at=None, started_rid=None)
        elif changes.get("status") == "paused":
            out["status"] = "paused"
        elif schedule_changed and out["next_expected_at"] is not None:
            out["next_expected_at"] = schedule_of(out).expected_after(now)
        out["down_at"] = _watch(out)
        return {k: out[k] for k in EDITABLE_COLUMNS}

    return plan


_SCHEDULE_KEYS = ("interval_seconds", "cron_expression", "timezone")
# The columns an edit writes (all of them, decided by the plan).
EDITABLE_COLUMNS = (
    "name",
    "schedule_type",
    "interval_seconds",
    "cron_expression",
    "timezone",
    "cron_upcoming",
    "cron_refresh_at",
    "grace_period_seconds",
    "status",
    "enabled",
    "notify_on_failure",
    "notify_on_recovery",
    "on_failure_url",
    "on_recovery_url",
    "alert_after",
    "next_expected_at",
    "started_at",
    "started_rid",
    "down_at",
)


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _watch(row: Row) -> str | None:
    """``down_at`` of a row after an edit: its deadline while watched (enabled, new or up)."""
    if not row["enabled"] or row["status"] not in ("new", "up"):
        return None
    grace = timedelta(seconds=row["grace_period_seconds"])
    expected = row["next_expected_at"]
    expected = datetime.fromisoformat(expected) if isinstance(expected, str) else expected
    if row["status"] == "new":
        expected = None  # a new monitor is watched only through a started run
    deadline = watch_deadline(grace, expected, row["started_at"])
    return _iso(deadline)


@dataclass(frozen=True, slots=True)
class PingRequest:
    """What a ping URL asks: its kind and exit status (None unless given as a number)."""

    kind: PingKind
    exit_status: int | None = None


class BadPing(ValueError):
    """A ping URL whose suffix is a number out of 0..255 (400)."""


def parse_ping_suffix(suffix: str | None) -> PingRequest | None:
    """``None`` → success; ``start``, ``fail``, ``log``; a number 0 (success) or 1-255 (fail).
    Another number raises BadPing; any other suffix is None (404, like an unknown token)."""
    if suffix is None or suffix == "":
        return PingRequest("success")
    if suffix in ("start", "fail", "log"):
        return PingRequest(suffix)  # type: ignore[arg-type]
    if suffix.isdigit() or (suffix.startswith("-") and suffix[1:].isdigit()):
        status = int(suffix)
        if not 0 <= status <= 255:
            raise BadPing(f"exit status must be 0-255, not {suffix}")
        return PingRequest("success" if status == 0 else "fail", status)
    return None


def parse_token(raw: str) -> UUID | None:
    try:
        return UUID(raw)
    except ValueError:
        return None


def serialize_edit(changes: Row) -> Row:
    """An edit's columns as JSON values (timestamps as ISO text) for the store."""

    def json_value(value: Any) -> Any:
        if isinstance(value, list):
            return [json_value(v) for v in value]
        return str(value) if isinstance(value, UUID) else _iso(value)

    return {k: json_value(v) for k, v in changes.items()}
