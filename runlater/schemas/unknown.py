"""Unknown fields are refused, with the nearest known name when one is close.

A typo must not be silently ignored: ``{"delya": "30s"}`` would otherwise create a task that
runs at once. Every body the API reads checks its keys here before anything else.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from runlater.errors import InvalidInput, invalid


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


def find_nul(value: Any, path: str, found: dict[str, list[str]]) -> None:
    """Add a message under ``path`` for each string in ``value`` that holds NUL (which no
    stored text can)."""
    if isinstance(value, str):
        if "\x00" in value:
            found.setdefault(path, []).append("must not contain NUL characters")
    elif isinstance(value, dict):
        for key, item in value.items():
            find_nul(key, path, found)
            find_nul(item, path, found)
    elif isinstance(value, list):
        for item in value:
            find_nul(item, path, found)


def read_body(
    payload: Any,
    singular: str,
    known: Iterable[str],
    aliases: Sequence[tuple[str, str]] = (),
) -> dict[str, Any]:
    """A request body's fields: flat, or wrapped in the resource's singular name
    (``{"task": {...}}``); every alias merged into its field's name. Unknown fields, NUL
    characters and an alias that differs from its field are refused together (422, each
    under its field)."""
    if not isinstance(payload, dict):
        raise InvalidInput("invalid_json", "request body must be a JSON object")
    if set(payload) == {singular}:
        if not isinstance(payload[singular], dict):
            raise invalid({singular: [f"must be an object of the {singular}'s fields"]})
        payload = payload[singular]
    data = dict(payload)
    details = unknown_fields(data, frozenset(known) | {alias for alias, _ in aliases})
    for key, value in data.items():
        find_nul(value, key, details)
    for alias, canonical in aliases:
        if alias in data:
            if canonical in data and data[canonical] != data[alias]:
                details.setdefault(alias, []).append(
                    f"{alias} and {canonical} are the same field and differ"
                )
            data[canonical] = data.pop(alias)
    if details:
        raise invalid(details)
    return data
