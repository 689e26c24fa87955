"""Unknown fields are refused, with the nearest known name when one is close.

A typo must not be silently ignored: ``{"delya": "30s"}`` would otherwise create a task that
runs at once. Every body the API reads checks its keys here before anything else.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any


def unknown_field_message(name: str, known: Iterable[str]) -> str:
    """``unknown field 'delya'; did you mean 'delay'?`` (or the list of known names)."""
    choices = sorted(known)
    close = difflib.get_close_matches(name.lower(), choices, n=1, cutoff=0.6)
    if close:
        return f"unknown field {name!r}; did you mean {close[0]!r}?"
    return f"unknown field {name!r}; known fields: {', '.join(choices)}"


def unknown_fields(
    payload: Mapping[str, Any], known: Iterable[str], *, prefix: str = ""
) -> dict[str, list[str]]:
    """Validation details for each key of ``payload`` not in ``known``, keyed by its path."""
    known = frozenset(known)
    return {
        f"{prefix}{key}": [unknown_field_message(str(key), known)]
        for key in payload
        if key not in known
    }
