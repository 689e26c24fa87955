"""What the home page shows, from the per-minute aggregate (migration 012): runs, success rate
and duration percentiles over a period, and per-hour series for the charts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

# Upper bounds (ms) of the duration buckets d0..d10; d11 is "more, or unknown".
BUCKET_BOUNDS_MS = (10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000)


def percentile_ms(histogram: Sequence[int], q: float) -> int | None:
    """The upper bound of the bucket that holds the q-quantile (None: no durations, or it
    falls in the open last bucket)."""
    total = sum(histogram)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for i, count in enumerate(histogram):
        seen += count
        if seen >= rank and count:
            return BUCKET_BOUNDS_MS[i] if i < len(BUCKET_BOUNDS_MS) else None
    return None


@dataclass(frozen=True, slots=True)
class Summary:
    runs: int
    success: int
    failed: int  # failed and timed out
    success_rate: float | None
    p50_ms: int | None
    p95_ms: int | None


def summarize(hours: Sequence[dict[str, Any]], since: datetime) -> Summary:
    rows = [h for h in hours if h["hour"] >= since]
    success = sum(h["success"] for h in rows)
    failed = sum(h["failed"] + h["timeout"] for h in rows)
    runs = success + failed + sum(h["other"] for h in rows)
    histogram = [sum(h["durations"][i] for h in rows) for i in range(len(BUCKET_BOUNDS_MS) + 1)]
    judged = success + failed
    return Summary(
        runs,
        success,
        failed,
        success / judged if judged else None,
        percentile_ms(histogram, 0.5),
        percentile_ms(histogram, 0.95),
    )


def series(hours: Sequence[dict[str, Any]], start: datetime, count: int) -> dict[str, list[Any]]:
    """Per-hour series from ``start`` (an hour), ``count`` hours, gaps as zeros: unix seconds,
    successes, failures (with timeouts), p50 and p95 (None where nothing ran)."""
    by_hour = {h["hour"]: h for h in hours}
    out: dict[str, list[Any]] = {"t": [], "success": [], "failed": [], "p50": [], "p95": []}
    for i in range(count):
        hour = start + timedelta(hours=i)
        row = by_hour.get(hour)
        out["t"].append(int(hour.timestamp()))
        out["success"].append(row["success"] if row else 0)
        out["failed"].append(row["failed"] + row["timeout"] if row else 0)
        out["p50"].append(percentile_ms(row["durations"], 0.5) if row else None)
        out["p95"].append(percentile_ms(row["durations"], 0.95) if row else None)
    return out
