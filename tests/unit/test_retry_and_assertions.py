"""Retry schedule, Retry-After parsing, non-retryable statuses, and response assertions."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import TypedDict

import pytest

from runlater.delivery.assertions import judge
from runlater.delivery.retry import (
    MAX_DELAY_S,
    backoff_delay_s,
    is_retryable,
    parse_retry_after,
    retry_delay_s,
)


class Outcome(TypedDict):
    """The attempt's outcome among ``retry_delay_s``'s keyword arguments."""

    status: str
    status_code: int | None
    retry_after: str | None


def test_schedule_doubles_from_10_s_with_jitter_and_caps_at_an_hour() -> None:
    rng = random.Random(3)
    for attempt, base in [(1, 10), (2, 20), (3, 40), (4, 80), (5, 160), (6, 320), (9, 2560)]:
        delay = backoff_delay_s(attempt, rng)
        assert base * 0.8 <= delay <= base * 1.2, (attempt, delay)
    assert all(backoff_delay_s(n, rng) <= MAX_DELAY_S for n in range(10, 30))


@pytest.mark.parametrize(
    ("code", "retry"),
    [
        (408, True),
        (425, True),
        (429, True),
        (400, False),
        (401, False),
        (404, False),
        (422, False),
        (500, True),
        (502, True),
        (None, True),
    ],
)
def test_which_failures_are_retried(code: int | None, retry: bool) -> None:
    assert is_retryable("failed", code) is retry
    assert is_retryable("success", 200) is False


def test_retry_after_seconds_date_and_cap() -> None:
    assert parse_retry_after("120") == 120
    assert parse_retry_after("99999") == MAX_DELAY_S
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_retry_after(format_datetime(now + timedelta(seconds=90), usegmt=True), now) == 90
    assert parse_retry_after(format_datetime(now - timedelta(seconds=90), usegmt=True), now) == 0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_retry_delay_respects_attempts_kind_and_retry_after() -> None:
    kw: Outcome = {"status": "failed", "status_code": 503, "retry_after": None}
    assert retry_delay_s(schedule_type="cron", attempt=1, retry_attempts=0, **kw) is None
    assert retry_delay_s(schedule_type="once", attempt=6, retry_attempts=5, **kw) is None
    assert retry_delay_s(schedule_type="once", attempt=5, retry_attempts=5, **kw) is not None
    assert (
        retry_delay_s(
            schedule_type="once",
            attempt=1,
            retry_attempts=5,
            status="failed",
            status_code=503,
            retry_after="30",
        )
        == 30
    )
    assert (
        retry_delay_s(
            schedule_type="once",
            attempt=1,
            retry_attempts=5,
            status="failed",
            status_code=404,
            retry_after="30",
        )
        is None
    )


@pytest.mark.parametrize(
    ("status", "body", "codes", "pattern", "error"),
    [
        (200, "ok", None, None, None),
        (204, "", None, None, None),
        (302, "", None, None, "HTTP 302"),
        (202, "", "200,201", None, "HTTP 202, expected 200,201"),
        (404, "", "404,410", None, None),
        (200, '{"status":"up"}', None, r'"status":\s*"up"', None),
        (
            200,
            '{"status":"down"}',
            None,
            r'"status":\s*"up"',
            "response body does not match expected_body_pattern",
        ),
        (500, "up", "200", "up", "HTTP 500, expected 200"),
    ],
)
def test_judge(
    status: int, body: str, codes: str | None, pattern: str | None, error: str | None
) -> None:
    assert judge(status, body, codes, pattern) == error


def test_pathological_pattern_is_cut_off_not_hung() -> None:
    started = time.perf_counter()
    error = judge(200, "a" * 5000 + "!", None, r"^(a|aa)+$")
    assert time.perf_counter() - started < 2
    assert error in (
        "expected_body_pattern took too long to match",
        "response body does not match expected_body_pattern",
    )


def test_a_cron_run_retries_like_a_one_time_task_but_never_past_its_next_run() -> None:
    kw: Outcome = {"status": "failed", "status_code": 503, "retry_after": None}
    delay = retry_delay_s(schedule_type="cron", attempt=1, retry_attempts=2, **kw)
    assert delay is not None and delay > 0  # no next run known: like a one-time task
    assert (
        retry_delay_s(
            schedule_type="cron",
            attempt=1,
            retry_attempts=2,
            status="failed",
            status_code=503,
            retry_after="30",
            next_run_in_s=3600,
        )
        == 30
    )
    # The retry would run at or after the next scheduled run: that run takes over.
    assert (
        retry_delay_s(
            schedule_type="cron",
            attempt=1,
            retry_attempts=2,
            status="failed",
            status_code=503,
            retry_after="30",
            next_run_in_s=30,
        )
        is None
    )
    assert retry_delay_s(schedule_type="cron", attempt=3, retry_attempts=2, **kw) is None
    # A one-time task has no next run: next_run_in_s does not apply to it.
    assert (
        retry_delay_s(
            schedule_type="once",
            attempt=1,
            retry_attempts=2,
            status="failed",
            status_code=503,
            retry_after="30",
            next_run_in_s=5,
        )
        == 30
    )
