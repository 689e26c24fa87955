"""Dead-letter queue input (filters, bulk bodies) and the OpenAPI models of ``/api/v1/dlq``.

Filters arrive as query parameters (strings) or inside a JSON body (``{"filter": {...}}``);
both are read by :func:`parse_filter`, which refuses unknown names and bad values together.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from runlater.errors import invalid
from runlater.schemas.unknown import find_nul, unknown_fields
from runlater.store.dlq import DeadLetterFilter

MAX_IDS = 100  # ids in one bulk body
MAX_MATCHING = 1000  # letters one "all matching" bulk call takes (has_more says if more match)
FILTER_FIELDS = ("task_id", "queue", "url", "status_code", "since", "until")
BULK_FIELDS = ("ids", "filter")


@dataclass(frozen=True, slots=True)
class Selection:
    """A bulk action's letters: by ``ids``, or every one ``where`` matches (ids None)."""

    ids: list[UUID] | None
    where: DeadLetterFilter


def _uuid(value: Any) -> UUID:
    if not isinstance(value, str):
        raise ValueError("must be an id (a UUID string)")
    try:
        return UUID(value)
    except ValueError:
        raise ValueError("must be an id (a UUID string)") from None


def _time(value: Any) -> datetime:
    message = "must be an ISO-8601 time with a UTC offset, e.g. 2025-01-31T12:00:00Z"
    if not isinstance(value, str):
        raise ValueError(message)
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(message) from None
    if when.tzinfo is None:
        raise ValueError(message)
    return when.astimezone(UTC)


def _status_code(value: Any) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 100 <= value <= 999:
        raise ValueError("must be an HTTP status code (100-999)")
    return value


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value or len(value) > 2048:
        raise ValueError("must be a non-empty string of at most 2048 characters")
    return value


READERS = {
    "task_id": _uuid,
    "queue": _text,
    "url": _text,
    "status_code": _status_code,
    "since": _time,
    "until": _time,
}


def parse_filter(values: Mapping[str, Any], *, prefix: str = "") -> DeadLetterFilter:
    """A filter from query parameters or a JSON object; unknown names and bad values are
    refused together (422), each under its path (``filter.status_code``)."""
    details = unknown_fields(values, FILTER_FIELDS, prefix=prefix)
    for key, value in values.items():
        find_nul(value, f"{prefix}{key}", details)
    parsed: dict[str, Any] = {}
    for name, read in READERS.items():
        value = values.get(name)
        if value is None or f"{prefix}{name}" in details:
            continue
        try:
            parsed[name] = read(value)
        except ValueError as exc:
            details.setdefault(f"{prefix}{name}", []).append(str(exc))
    if details:
        raise invalid(details)
    return DeadLetterFilter(**parsed)


def parse_selection(payload: Any) -> Selection:
    """A bulk body: ``{"ids": [...]}`` (1-100 ids) or ``{"filter": {...}}`` (``{}``: every
    letter), exactly one of them."""
    if not isinstance(payload, dict):
        raise invalid({"body": ["must be a JSON object"]})
    details = unknown_fields(payload, BULK_FIELDS)
    if details:
        raise invalid(details)
    if ("ids" in payload) == ("filter" in payload):
        raise invalid({"ids": ["give either ids (a list of dead-letter ids) or filter"]})
    if "filter" in payload:
        where = payload["filter"]
        if not isinstance(where, dict):
            raise invalid({"filter": ["must be an object of filters (may be empty: {})"]})
        return Selection(None, parse_filter(where, prefix="filter."))
    ids = payload["ids"]
    if not isinstance(ids, list) or not 1 <= len(ids) <= MAX_IDS:
        raise invalid({"ids": [f"must be a list of 1 to {MAX_IDS} dead-letter ids"]})
    parsed: list[UUID] = []
    for index, raw in enumerate(ids):
        try:
            parsed.append(_uuid(raw))
        except ValueError as exc:
            details.setdefault(f"ids[{index}]", []).append(str(exc))
    if details:
        raise invalid(details)
    return Selection(list(dict.fromkeys(parsed)), DeadLetterFilter())


# ------------------------------------------------------------------------ OpenAPI models


class DeadLetter(BaseModel):
    """An execution that failed for good (failed or timed out, no retry to follow)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "01935e2a-7c1e-7b3a-9f3e-2d7c1a4b5e6f",
                    "execution_id": "01935e2a-6b0d-7a29-8e2d-1c6b0a3a4d5e",
                    "task_id": "01935e29-5a0c-7918-9d1c-0b5a9f2a3c4d",
                    "task_name": "sync invoices",
                    "queue": None,
                    "url": "https://api.example.com/hooks/invoices",
                    "method": "POST",
                    "status": "failed",
                    "status_code": 503,
                    "error_message": "HTTP 503",
                    "attempt": 6,
                    "response_body": "Service Unavailable",
                    "failed_at": "2025-01-31T12:00:05.120Z",
                    "inserted_at": "2025-01-31T12:00:05.121Z",
                }
            ]
        }
    )

    id: UUID = Field(description="the dead letter's id (the dlqId)")
    execution_id: UUID = Field(description="the execution that failed for good")
    task_id: UUID
    task_name: str
    queue: str | None
    url: str = Field(description="the URL called")
    method: str
    status: str = Field(description="failed or timeout")
    status_code: int | None = Field(description="the last answer's status code, if any")
    error_message: str = Field(description="why it failed")
    attempt: int = Field(description="the attempt that failed for good (1-11)")
    response_body: str | None = Field(
        description="the last answer's body (in lists, its first 1,024 characters)"
    )
    failed_at: str
    inserted_at: str


class DeadLetterListQuery(BaseModel):
    task_id: UUID | None = Field(default=None, description="only this task's letters")
    queue: str | None = Field(default=None, description="only letters of this queue")
    url: str | None = Field(default=None, description="a piece of the URL (case-insensitive)")
    status_code: int | None = Field(default=None, ge=100, le=999)
    since: str | None = Field(default=None, description="failed at or after (ISO-8601)")
    until: str | None = Field(default=None, description="failed before (ISO-8601)")
    before: UUID | None = Field(
        default=None, description="a cursor: only letters older than this dead-letter id"
    )
    limit: int = Field(default=50, ge=1, le=100, description="items per page")
    offset: int = Field(default=0, ge=0, le=10_000_000, description="items to skip")


class DeadLetterPage(BaseModel):
    """One page of dead letters, newest first; ``next_cursor`` (when ``has_more``) is the
    ``before`` of the next page."""

    data: list[DeadLetter]
    has_more: bool = Field(examples=[False])
    next_cursor: UUID | None = Field(examples=[None])
    limit: int = Field(ge=1, le=100, examples=[50])
    offset: int = Field(ge=0, examples=[0])


class DeadLetterFilterFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    task_id: UUID | None = None
    queue: str | None = None
    url: str | None = Field(default=None, description="a piece of the URL (case-insensitive)")
    status_code: int | None = Field(default=None, ge=100, le=999)
    since: str | None = Field(default=None, description="failed at or after (ISO-8601)")
    until: str | None = Field(default=None, description="failed before (ISO-8601)")


class DeadLetterSelection(BaseModel):
    """Either ``ids`` (1-100 dead-letter ids) or ``filter`` (every letter it matches, up to
    1,000 per call; ``{}`` matches all)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"filter": {"status_code": 503}}]},
    )

    ids: list[UUID] | None = Field(default=None, min_length=1, max_length=MAX_IDS)
    filter: DeadLetterFilterFields | None = None


class DeadLetterRetried(BaseModel):
    """The new attempt made of a dead letter."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "dead_letter_id": "01935e2a-7c1e-7b3a-9f3e-2d7c1a4b5e6f",
                    "execution_id": "01935e40-1a2b-7c3d-8e4f-5a6b7c8d9e0f",
                    "status": "pending",
                    "attempt": 7,
                    "scheduled_for": "2025-01-31T12:10:00.000Z",
                }
            ]
        }
    )

    dead_letter_id: UUID
    execution_id: UUID = Field(description="the new attempt")
    status: str
    attempt: int
    scheduled_for: str


class DeadLettersRetried(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"retried": 1, "executions": [], "not_found": [], "has_more": False}]
        }
    )

    retried: int = Field(description="letters retried (and removed from the queue)")
    executions: list[DeadLetterRetried]
    not_found: list[UUID] = Field(description="ids given that are not dead letters (any more)")
    has_more: bool = Field(description="filter: more letters match than this call took")


class DeadLettersDeleted(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"deleted": 2, "not_found": [], "has_more": False}]}
    )

    deleted: int
    not_found: list[UUID] = Field(description="ids given that are not dead letters (any more)")
    has_more: bool = Field(description="filter: more letters match than this call took")
