"""Named SQL queries loaded from ``runlater/store/sql/*.sql``.

A file holds blocks that start with ``-- name: some_name``; the text up to the next such line
is the query. Every query that touches tenant data takes the organization id.
"""

from __future__ import annotations

import re
from importlib import resources

_NAME = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)


def parse(text: str) -> dict[str, str]:
    parts = _NAME.split(text)
    queries: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in queries:
            raise ValueError(f"query {name!r} defined twice")
        queries[name] = body.strip()
    return queries


class Queries:
    """Attribute access to every named query: ``Q.claim_executions``."""

    def __init__(self) -> None:
        found: dict[str, str] = {}
        for entry in sorted(
            resources.files("runlater.store").joinpath("sql").iterdir(), key=lambda e: e.name
        ):
            if entry.name.endswith(".sql"):
                for name, sql in parse(entry.read_text("utf-8")).items():
                    if name in found:
                        raise ValueError(f"query {name!r} defined in two files")
                    found[name] = sql
        self._queries = found

    def __getattr__(self, name: str) -> str:
        try:
            return self._queries[name]
        except KeyError:
            raise AttributeError(f"no SQL query named {name!r}") from None


Q = Queries()
