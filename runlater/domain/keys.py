"""API keys as every front door makes them (the API and the dashboard)."""

from __future__ import annotations

from runlater.errors import invalid

MAX_NAME = 200


def clean_key_name(name: object, field: str = "name") -> str | None:
    """A key's optional name: 1 to 200 characters, no NUL; None (or, from a form, an empty
    string) means no name."""
    if name is None or name == "":
        return None
    if not isinstance(name, str):
        raise invalid({field: ["must be a string"]})
    if len(name) > MAX_NAME:
        raise invalid({field: [f"must be 1 to {MAX_NAME} characters"]})
    if "\x00" in name:
        raise invalid({field: ["must not contain a NUL character"]})
    return name
