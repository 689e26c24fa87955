"""When a failed one-time delivery is tried again.

Schedule (before jitter): 10 s, 20 s, 40 s, 80 s, 160 s, 320 s, ... capped at 1 h; each delay
is multiplied by a random factor in [0.8, 1.2] so retries of many tasks do not march in step.
A ``Retry-After`` from the target replaces the computed delay (capped at 1 h). Client errors
other than 408, 425 and 429 are final: repeating the same request cannot succeed. Cron tasks
never retry (their next run is the retry).
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

BASE_DELAY_S = 10.0
MAX_DELAY_S = 3600.0
RETRYABLE_4XX = frozenset({408, 425, 429})


def is_retryable(status: str, status_code: int | None) -> bool:
    if status == "success":
        return False
    if status_code is not None and 400 <= status_code < 500:
        return status_code in RETRYABLE_4XX
    return True


def backoff_delay_s(attempt: int, rng: random.Random | None = None) -> float:
    """Delay before attempt ``attempt + 1`` after attempt ``attempt`` (1-based) failed."""
    base = min(MAX_DELAY_S, BASE_DELAY_S * 2 ** (attempt - 1))
    return min(MAX_DELAY_S, base * (rng or random).uniform(0.8, 1.2))


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP date), capped at 1 h."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(MAX_DELAY_S, float(value))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    delta = (when - (now or datetime.now(UTC))).total_seconds()
    return min(MAX_DELAY_S, max(0.0, delta))


def retry_delay_s(
    *,
    schedule_type: str,
    attempt: int,
    retry_attempts: int,
    status: str,
    status_code: int | None,
    retry_after: str | None,
    next_run_in_s: float | None = None,
    rng: random.Random | None = None,
) -> float | None:
    """Seconds until the next attempt, or None when there is none.

    One-time and cron tasks retry alike, up to ``retry_attempts``; a cron task's retry is not
    created when it would run at or after the task's next scheduled run (``next_run_in_s``
    from now): that run takes over.
    """
    if attempt > retry_attempts or not is_retryable(status, status_code):
        return None
    honoured = parse_retry_after(retry_after)
    delay = honoured if honoured is not None else backoff_delay_s(attempt, rng)
    if schedule_type == "cron" and next_run_in_s is not None and delay >= next_run_in_s:
        return None
    return delay
