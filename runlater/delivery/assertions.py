"""Whether a response counts as success: any 2xx, or the task's ``expected_status_codes``, and
``expected_body_pattern`` (if set) found in the stored body text.

Patterns are customers' and bodies are their targets', so a pathological pattern must not pin
a worker: matching uses the ``regex`` engine with a time limit.
"""

from __future__ import annotations

from functools import lru_cache

import regex

PATTERN_TIMEOUT_S = 0.1


@lru_cache(maxsize=1024)
def _codes(expected: str) -> frozenset[int]:
    return frozenset(int(code) for code in expected.split(",") if code.strip())


@lru_cache(maxsize=256)
def _pattern(pattern: str) -> regex.Pattern[str]:
    return regex.compile(pattern)


def judge(
    status_code: int,
    body: str,
    expected_status_codes: str | None,
    expected_body_pattern: str | None,
) -> str | None:
    """None when the response is a success, else why it is not."""
    if expected_status_codes:
        codes = _codes(expected_status_codes)
        if status_code not in codes:
            return f"HTTP {status_code}, expected {expected_status_codes}"
    elif not 200 <= status_code < 300:
        return f"HTTP {status_code}"
    if expected_body_pattern:
        try:
            found = _pattern(expected_body_pattern).search(body, timeout=PATTERN_TIMEOUT_S)
        except TimeoutError:
            return "expected_body_pattern took too long to match"
        except regex.error as exc:
            return f"expected_body_pattern is not a valid pattern: {exc}"
        if found is None:
            return "response body does not match expected_body_pattern"
    return None
