"""Ids in page paths: a malformed one is as unknown as another organization's (404)."""

from __future__ import annotations

from uuid import UUID

from runlater.errors import NotFound


def page_id(raw: str) -> UUID:
    try:
        return UUID(raw)
    except ValueError:
        raise NotFound("not found") from None
