"""The heartbeat monitor's state machine: interval and cron schedules (one across a DST change),
grace, a start without a finish, rid pairing, failures, pauses and log pings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

from runlater.cron import CronSchedule
from runlater.domain.heartbeat import Schedule, State, is_overdue, mark_down, on_ping, pause

T0 = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
GRACE = timedelta(minutes=5)
EVERY_HOUR = Schedule(grace=GRACE, interval=HOUR)
RID_A = UUID("01900000-0000-7000-8000-00000000000a")
RID_B = UUID("01900000-0000-7000-8000-00000000000b")


def test_an_interval_monitor_is_up_after_a_ping_and_down_after_interval_plus_grace() -> None:
    first = on_ping(State(), EVERY_HOUR, "success", T0)
    assert first.changed_to == "up" and first.duration is None
    state = first.state
    assert state.next_expected_at == T0 + HOUR and state.down_at == T0 + HOUR + GRACE
    assert not is_overdue(state, T0 + HOUR)  # late, but within the grace
    assert not is_overdue(state, T0 + HOUR + GRACE - timedelta(microseconds=1))
    assert is_overdue(state, T0 + HOUR + GRACE)
    down = mark_down(state)
    assert down.status == "down" and not is_overdue(down, T0 + 10 * HOUR)
    back = on_ping(down, EVERY_HOUR, "success", T0 + 2 * HOUR)
    assert back.changed_to == "up" and back.state.down_at == T0 + 3 * HOUR + GRACE


def test_a_new_monitor_waits_for_its_first_ping_however_long() -> None:
    assert not is_overdue(State(), T0 + 1000 * HOUR)


def test_a_cron_monitor_expects_the_next_run_across_a_spring_forward_change() -> None:
    """02:30 every day in Amsterdam: on 29 March 2026 02:30 does not exist (02:00 CET jumps to
    03:00 CEST), so that day's run is at the jump, 01:00 UTC (the DST rules of runlater.cron)."""
    nightly = Schedule(grace=GRACE, cron=CronSchedule("30 2 * * *", "Europe/Amsterdam"))
    ran = datetime(2026, 3, 28, 1, 30, tzinfo=UTC)  # 02:30 CET
    state = on_ping(State(), nightly, "success", ran).state
    assert state.next_expected_at == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    after = on_ping(state, nightly, "success", datetime(2026, 3, 29, 1, 0, 5, tzinfo=UTC)).state
    assert after.next_expected_at == datetime(2026, 3, 30, 0, 30, tzinfo=UTC)  # 02:30 CEST


def test_a_start_without_a_finish_is_down_after_the_grace() -> None:
    started = on_ping(State(), EVERY_HOUR, "start", T0)
    assert started.changed_to is None and started.state.status == "new"
    assert started.state.down_at == T0 + GRACE  # even a new monitor: the run did not finish
    assert is_overdue(started.state, T0 + GRACE)
    finished = on_ping(started.state, EVERY_HOUR, "success", T0 + timedelta(minutes=3))
    assert finished.duration == timedelta(minutes=3)
    assert finished.state.started_at is None
    assert finished.state.down_at == T0 + timedelta(minutes=3) + HOUR + GRACE


def test_an_open_run_has_its_grace_from_its_start() -> None:
    up = on_ping(State(), EVERY_HOUR, "success", T0).state  # expected at 13:00
    late_start = on_ping(up, EVERY_HOUR, "start", T0 + timedelta(minutes=62)).state
    assert late_start.down_at == T0 + timedelta(minutes=67)  # it may finish: 13:02 + grace
    early_start = on_ping(up, EVERY_HOUR, "start", T0 + timedelta(minutes=10)).state
    assert early_start.down_at == T0 + timedelta(minutes=10) + GRACE


def test_rid_ties_a_finish_to_its_start() -> None:
    up = on_ping(State(), EVERY_HOUR, "success", T0).state
    started = on_ping(up, EVERY_HOUR, "start", T0 + timedelta(minutes=1), RID_A).state
    other = on_ping(started, EVERY_HOUR, "success", T0 + timedelta(minutes=2), RID_B)
    assert other.duration is None  # another run's finish: this run stays open
    assert other.state.started_rid == RID_A
    assert other.state.down_at == T0 + timedelta(minutes=1) + GRACE  # the open run's grace
    mine = on_ping(other.state, EVERY_HOUR, "success", T0 + timedelta(minutes=4), RID_A)
    assert mine.duration == timedelta(minutes=3) and mine.state.started_at is None


def test_a_finish_without_rid_closes_the_latest_start() -> None:
    up = on_ping(State(), EVERY_HOUR, "success", T0).state
    first = on_ping(up, EVERY_HOUR, "start", T0 + timedelta(minutes=1)).state
    latest = on_ping(first, EVERY_HOUR, "start", T0 + timedelta(minutes=2)).state
    done = on_ping(latest, EVERY_HOUR, "success", T0 + timedelta(minutes=5))
    assert done.duration == timedelta(minutes=3)


def test_a_failure_is_down_at_once_and_a_failed_run_has_a_duration() -> None:
    up = on_ping(State(), EVERY_HOUR, "success", T0).state
    started = on_ping(up, EVERY_HOUR, "start", T0 + timedelta(minutes=1)).state
    failed = on_ping(started, EVERY_HOUR, "fail", T0 + timedelta(minutes=2))
    assert failed.changed_to == "down" and failed.duration == timedelta(minutes=1)
    assert failed.state.down_at is None and not is_overdue(failed.state, T0 + 10 * HOUR)
    again = on_ping(failed.state, EVERY_HOUR, "fail", T0 + timedelta(minutes=3))
    assert again.changed_to is None  # already down: no second transition


def test_a_paused_monitor_is_never_overdue_and_a_ping_resumes_it() -> None:
    up = on_ping(State(), EVERY_HOUR, "success", T0).state
    paused = pause(up)
    assert paused.status == "paused" and not is_overdue(paused, T0 + 100 * HOUR)
    resumed = on_ping(paused, EVERY_HOUR, "success", T0 + 100 * HOUR)
    assert resumed.changed_to == "up" and resumed.state.down_at == T0 + 101 * HOUR + GRACE
    started = on_ping(paused, EVERY_HOUR, "start", T0 + 100 * HOUR)
    assert started.changed_to == "up" and started.state.down_at == T0 + 100 * HOUR + GRACE


def test_a_log_ping_changes_nothing() -> None:
    up = on_ping(State(), EVERY_HOUR, "success", T0).state
    logged = on_ping(up, EVERY_HOUR, "log", T0 + timedelta(minutes=30))
    assert logged.state == up and logged.changed_to is None and logged.duration is None
