"""How much a customer's regular expression may cost: checked when a task is saved
(``expected_body_pattern``), before anything compiles it.

The ``regex`` engine (which matches body patterns, with a time limit) writes a counted
repetition out in full when it compiles: ``\\w{65535}`` (9 characters) compiles to 8.8 MiB
in a second of CPU, and patterns are cached per delivery path.
"""

from __future__ import annotations

import re

MAX_PATTERN_EXPANSION = 10_000

_COUNT = re.compile(r"\{(\d*)(?:,(\d*))?\}")


def pattern_expansion(pattern: str) -> int:
    """How many atoms ``pattern`` becomes once its counted repetitions (``{n}``, ``{n,m}``) are
    written out, nesting included — an upper estimate of what compiling it costs."""
    size, _ = _sequence(pattern, 0)
    return size


def _sequence(p: str, i: int) -> tuple[int, int]:
    """The expanded size of the sequence starting at ``p[i]``, up to a ``)`` or the end."""
    total = 0
    while i < len(p) and p[i] != ")":
        if p[i] == "(":
            atom, i = _sequence(p, i + 1)
            i += 1  # the ")"
        elif p[i] == "[":
            i = _class_end(p, i)
            atom = 1
        elif p[i] == "\\":
            atom, i = 1, i + 2
        else:
            atom, i = 1, i + 1
        count = _COUNT.match(p, i)
        if count is not None and (count[1] or count[2]):
            bounds = [int(b) for b in (count[1], count[2]) if b]
            atom *= max(bounds)
            i = count.end()
        total += atom
    return total, i


def _class_end(p: str, i: int) -> int:
    """The index after the character class that starts at ``p[i]`` (``[``)."""
    i += 1
    if i < len(p) and p[i] == "^":
        i += 1
    if i < len(p) and p[i] == "]":
        i += 1
    while i < len(p) and p[i] != "]":
        i += 2 if p[i] == "\\" else 1
    return i + 1
