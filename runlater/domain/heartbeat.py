"""The heartbeat monitor's state machine (a dead man's switch), without I/O.

A monitor expects a ping on a schedule: every ``interval`` after the last one, or at the next
cron instant (in its time zone, with the DST rules of ``runlater.cron``) after the last one.
It goes down when none came within the grace after that, when a run that reported its start
did not report its finish within the grace, or at once on a failure ping. The rules follow
Healthchecks.io's, so cron wrappers written for it behave the same here:

* ``new`` until the first finish; a new monitor goes down only when a run it reported
  started does not finish within the grace.
* success (``/ping/T``, exit status 0) → up; failure (``/fail``, exit status 1 to 255) → down;
  ``/start`` opens a run (the state stays what it was); ``/log`` only records.
* A finish closes the run it belongs to: the start with the same ``rid`` if it has one, else
  the latest start; its duration is finish minus start. Only the latest start is the open run
  watched here; the duration of an older overlapping run (a finish whose ``rid`` names it) is
  measured from its start in the ping log, by the store.
* A ping to a paused monitor resumes it (the ping decides the new state).
* ``down_at`` is the instant the Monitor marks the monitor down: the open run's start plus the
  grace while a run is open, else the next expected ping plus the grace.
* A start that resumes a paused monitor watches only its run: the schedule starts again from
  the run's finish.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal
from uuid import UUID

from runlater.cron import CronSchedule

Status = Literal["new", "up", "down", "paused"]
PingKind = Literal["success", "fail", "start", "log"]


@dataclass(frozen=True, slots=True)
class Schedule:
    """When pings are expected: ``interval`` or ``cron`` (exactly one), and the grace."""

    grace: timedelta
    interval: timedelta | None = None
    cron: CronSchedule | None = None

    def __post_init__(self) -> None:
        if (self.interval is None) == (self.cron is None):
            raise ValueError("a schedule has an interval or a cron expression, not both")

    def expected_after(self, at: datetime) -> datetime:
        """The next ping expected after one at ``at``."""
        if self.interval is not None:
            return at + self.interval
        assert self.cron is not None
        return self.cron.next_after(at)


@dataclass(frozen=True, slots=True)
class State:
    status: Status = "new"
    last_ping_at: datetime | None = None
    next_expected_at: datetime | None = None
    started_at: datetime | None = None  # the open run, if a start has no finish yet
    started_rid: UUID | None = None
    down_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class PingOutcome:
    state: State
    duration: timedelta | None  # of the run this ping finished, if it finished one
    changed_to: Status | None  # the new status, when the ping changed it


def watch_deadline(
    grace: timedelta, expected: datetime | None, started: datetime | None
) -> datetime | None:
    """When the Monitor marks a watched monitor down. An open run has its grace from its start
    (as Healthchecks.io does: a run that started just before the deadline may finish);
    otherwise the next expected ping has it."""
    if started is not None:
        return started + grace
    return expected + grace if expected is not None else None


def on_ping(
    state: State, schedule: Schedule, kind: PingKind, at: datetime, rid: UUID | None = None
) -> PingOutcome:
    """The state after a ping of ``kind`` received at ``at``."""
    if kind == "log":
        return PingOutcome(state, None, None)
    if kind == "start":
        status = state.status
        if status == "paused":
            status = "up" if state.next_expected_at is not None else "new"
        watched = status in ("new", "up")
        new = replace(
            state,
            status=status,
            last_ping_at=at,
            started_at=at,
            started_rid=rid,
            next_expected_at=None if state.status == "paused" else state.next_expected_at,
            down_at=watch_deadline(schedule.grace, None, at) if watched else None,
        )
        return PingOutcome(new, None, status if status != state.status else None)
    # A finish: success or failure.
    finished_run = state.started_at is not None and (rid is None or rid == state.started_rid)
    duration = at - state.started_at if finished_run and state.started_at is not None else None
    still_open = state.started_at is not None and not finished_run
    outcome: Status = "up" if kind == "success" else "down"
    expected = schedule.expected_after(at)
    started = state.started_at if still_open else None
    new = State(
        status=outcome,
        last_ping_at=at,
        next_expected_at=expected,
        started_at=started,
        started_rid=state.started_rid if still_open else None,
        down_at=watch_deadline(schedule.grace, expected, started) if outcome == "up" else None,
    )
    return PingOutcome(new, duration, outcome if outcome != state.status else None)


def is_overdue(state: State, now: datetime) -> bool:
    """Whether the Monitor marks this monitor down at ``now``: an up monitor whose ping is
    late, or a new or up one whose reported run has not finished within the grace."""
    return state.status in ("new", "up") and state.down_at is not None and state.down_at <= now


def mark_down(state: State) -> State:
    return replace(state, status="down", down_at=None)


def pause(state: State) -> State:
    return replace(state, status="paused", down_at=None)
