"""Cron schedules evaluated in an IANA time zone, with Debian cron's DST policy.

Matching is done by croniter on *naive local wall-clock times*; each matching wall time is then
mapped to UTC instants here, with ``zoneinfo`` fold handling, according to the kind of job:

* Wildcard jobs (the minute or the hour field starts with ``*``, e.g. ``*/15 * * * *`` or
  ``0 * * * *``) follow real elapsed time. A wall time repeated by a fall-back transition runs at
  both occurrences; a wall time skipped by a spring-forward transition does not run at all.
  ``0 * * * *`` therefore fires 25 times on a fall-back day and 23 times on a spring-forward day.
* Fixed-time jobs (every other job, e.g. ``30 2 * * *`` or ``0 9 * * 1-5``) run once per matching
  wall time. A repeated wall time runs only at its first occurrence (fold=0); a skipped wall time
  runs once, at the instant of the jump (the first valid instant after the gap). Several skipped
  wall times of one job collapse into that single run.

Each wall time thus maps to a fixed set of instants, so results do not depend on where a scan
starts: chaining ``next_after`` from any instant yields exactly ``runs_between``. In particular a
scheduler restarted inside a repeated hour never re-runs a fixed-time job that already ran at the
first occurrence. These rules match cronsim (Debian semantics); the day-of-month/day-of-week rule
is Debian's too: "OR" unless either field starts with ``*``, in which case "AND".
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import islice, pairwise
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, CroniterError, croniter

from runlater.errors import InvalidCron

MACROS: dict[str, str] = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_FIELD_NAMES = ("minute", "hour", "day-of-month", "month", "day-of-week")
# croniter's random ("R") and hashed ("H") extensions are not deterministic cron: refuse them.
_NON_DETERMINISTIC = re.compile(r"(^|[,/-])[RH]($|[(,/-])", re.IGNORECASE)
_PROBE_BASE = datetime(2000, 1, 1)
_MINUTE = timedelta(minutes=1)


def _aware_utc(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {value!r}")
    return value.astimezone(UTC)


# Schedules are cached by expression (the scheduler's ``_schedule``): a bound on the key size.
MAX_EXPRESSION_CHARS = 200


class CronSchedule:
    """A validated 5-field cron expression bound to an IANA time zone."""

    def __init__(self, expression: str, timezone: str = "UTC") -> None:
        text = expression.strip()
        if not text:
            raise InvalidCron("cron expression is empty")
        if len(text) > MAX_EXPRESSION_CHARS:
            raise InvalidCron(
                f"cron expression is {len(text)} characters long; at most "
                f"{MAX_EXPRESSION_CHARS} are allowed"
            )
        if text.startswith("@"):
            if text.lower() not in MACROS:
                raise InvalidCron(
                    f"unknown cron macro {text!r}; expected one of {', '.join(MACROS)}"
                )
            text = MACROS[text.lower()]
        fields = text.split()
        if len(fields) != 5:
            raise InvalidCron(
                f"cron expression {text!r} has {len(fields)} "
                f"field{'' if len(fields) == 1 else 's'}; expected exactly 5 "
                "(minute hour day-of-month month day-of-week), e.g. '*/15 * * * *'"
            )
        for index, (name, value) in enumerate(zip(_FIELD_NAMES, fields, strict=True)):
            probe = ["*"] * 5
            probe[index] = value
            if _NON_DETERMINISTIC.search(value) or not _parses(" ".join(probe)):
                raise InvalidCron(f"invalid {name} field {value!r} in cron expression {text!r}")
        zone_name = timezone.strip()
        try:
            self._tz = ZoneInfo(zone_name)
        except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
            raise InvalidCron(f"unknown time zone {timezone!r} (expected an IANA name)") from exc

        self.expression: str = " ".join(fields)
        self.timezone: str = zone_name
        self.is_wildcard: bool = fields[0].startswith("*") or fields[1].startswith("*")
        # Debian: day-of-month and day-of-week are OR-ed unless either starts with "*".
        self._day_or = not (fields[2].startswith(("*", "?")) or fields[4].startswith(("*", "?")))
        try:
            croniter(self.expression, _PROBE_BASE, day_or=self._day_or).get_next(datetime)
        except CroniterBadDateError as exc:
            raise InvalidCron(f"cron expression {text!r} never matches a real date") from exc
        except (CroniterError, ValueError) as exc:
            raise InvalidCron(f"invalid cron expression {text!r}: {exc}") from exc

    def __repr__(self) -> str:
        return f"CronSchedule({self.expression!r}, timezone={self.timezone!r})"

    def next_after(self, after: datetime) -> datetime:
        """First run strictly after ``after`` (aware, any zone), as an aware UTC datetime."""
        for run in self._runs_after(_aware_utc(after, "after")):
            return run
        raise InvalidCron(f"cron expression {self.expression!r} has no run after {after}")

    def runs_between(
        self, start: datetime, end: datetime, limit: int | None = None
    ) -> list[datetime]:
        """All runs ``t`` with ``start < t <= end``, ascending, aware UTC; at most ``limit``."""
        end_utc = _aware_utc(end, "end")
        runs: list[datetime] = []
        for run in self._runs_after(_aware_utc(start, "start")):
            if run > end_utc or (limit is not None and len(runs) >= limit):
                break
            runs.append(run)
        return runs

    def upcoming(self, after: datetime, count: int) -> list[datetime]:
        """The next ``count`` runs strictly after ``after``, ascending, aware UTC."""
        return list(islice(self._runs_after(_aware_utc(after, "after")), count))

    def interval_minutes(self, after: datetime) -> int:
        """Smallest gap in whole minutes (at least 1) between consecutive runs of the next 10."""
        runs = list(islice(self._runs_after(_aware_utc(after, "after")), 10))
        if len(runs) < 2:
            raise InvalidCron(f"cron expression {self.expression!r} has fewer than 2 future runs")
        return max(1, min((b - a) // _MINUTE for a, b in pairwise(runs)))

    # -- evaluation -------------------------------------------------------------------------

    def _runs_after(self, after: datetime) -> Iterator[datetime]:
        """Runs strictly after the UTC instant ``after``, ascending, without duplicates.

        Along ascending wall times, the first instant of each wall time (fold=0, or the jump
        instant) never decreases, and the fold=1 instant is never earlier than it. So once the
        first instant of the current wall time is known, every pending instant at or before it
        is final and can be emitted in order.
        """
        pending: list[datetime] = []
        last = after
        for wall in self._walls_after(self._scan_start(after)):
            instants = self._instants(wall)
            for instant in instants:
                if instant > after:
                    heapq.heappush(pending, instant)
            if not instants:
                continue
            while pending and pending[0] <= instants[0]:
                instant = heapq.heappop(pending)
                if instant > last:  # fixed-time skipped wall times may share the jump instant
                    last = instant
                    yield instant
        yield from (instant for instant in sorted(pending) if instant > last)

    def _scan_start(self, after: datetime) -> datetime:
        """Naive wall time from which no earlier wall time can map to an instant after ``after``.

        It is the local wall time of ``after``, moved back by the length of the repeated period
        when ``after`` falls in the first pass of a fall-back (the second pass is still to come).
        """
        local = after.astimezone(self._tz)
        wall = local.replace(tzinfo=None)
        if local.fold == 0:
            first, second = local.utcoffset(), wall.replace(tzinfo=self._tz, fold=1).utcoffset()
            assert first is not None and second is not None
            if first > second:
                wall -= first - second
        return wall

    def _walls_after(self, start: datetime) -> Iterator[datetime]:
        """Naive local wall times matching the expression, strictly after ``start``."""
        matches = croniter(self.expression, start, day_or=self._day_or)
        while True:
            try:
                yield matches.get_next(datetime)
            except CroniterBadDateError:
                return

    def _instants(self, wall: datetime) -> tuple[datetime, ...]:
        """The UTC instants at which the job runs for one matching local wall time."""
        first = wall.replace(tzinfo=self._tz).utcoffset()  # fold=0: offset before a transition
        second = wall.replace(tzinfo=self._tz, fold=1).utcoffset()  # offset after it
        assert first is not None and second is not None
        if first == second:
            return ((wall - first).replace(tzinfo=UTC),)
        if first > second:  # repeated by a fall-back: first occurrence, then second
            earliest = (wall - first).replace(tzinfo=UTC)
            if self.is_wildcard:
                return earliest, (wall - second).replace(tzinfo=UTC)
            return (earliest,)
        if self.is_wildcard:  # skipped by a spring-forward: real time never shows it
            return ()
        return (self._jump_instant((wall - second).replace(tzinfo=UTC), second - first),)

    def _jump_instant(self, before: datetime, width: timedelta) -> datetime:
        """The transition instant in ``(before, before + width]``, to the second."""
        after_offset = (before + width).astimezone(self._tz).utcoffset()
        low, high = 0, int(width.total_seconds())
        while high - low > 1:
            middle = (low + high) // 2
            probe = before + timedelta(seconds=middle)
            if probe.astimezone(self._tz).utcoffset() == after_offset:
                high = middle
            else:
                low = middle
        return before + timedelta(seconds=high)


def _parses(expression: str) -> bool:
    try:
        croniter(expression, _PROBE_BASE)
    except (CroniterError, ValueError, KeyError, IndexError, TypeError):
        return False
    return True
