"""The shape of task payloads (``POST /tasks``, ``PATCH /tasks/{id}``, batch and sync items).

Field types and ranges are a pydantic model (the source of the OpenAPI schema); timing values
(``delay``/``run_at``) are parsed here because they answer with their own error codes. What a
payload means — defaults, the schedule, what an edit changes — is ``runlater.domain.tasks``.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import regex
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationError,
    field_validator,
)

from runlater.errors import InvalidInput, invalid
from runlater.patterns import MAX_PATTERN_EXPANSION, pattern_expansion
from runlater.schemas.queues import QUEUE_NAME_HELP, QUEUE_NAME_PATTERN, check_queue_name
from runlater.schemas.unknown import read_body

Method = Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
MAX_BODY_BYTES = 256 * 1024
MAX_DELAY_S = 366 * 86400
RUN_AT_MAX_PAST_S = 300
FORBIDDEN_HEADERS = frozenset(
    {
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "upgrade",
        "expect",
    }
)
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
# What an HTTP client can send as a header value: visible ASCII, space and tab.
_HEADER_VALUE = re.compile(r"[\t\x20-\x7e]*")
_STATUS_CODES = re.compile(r"^\s*[1-5]\d\d(\s*,\s*[1-5]\d\d)*\s*$")
_DELAY = re.compile(r"^\s*(\d+)\s*([smhd]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
_ALIASES = (("cron", "cron_expression"), ("run_at", "scheduled_at"))


def check_status_codes(value: str | None) -> str | None:
    """Comma-separated HTTP status codes (spaces dropped), or ValueError saying the form."""
    if value is not None and not _STATUS_CODES.match(value):
        raise ValueError("must be comma-separated HTTP status codes, e.g. '200,201'")
    return value.replace(" ", "") if value else value


def _http_url(value: str | None) -> str | None:
    if value is None:
        return None
    if len(value) > 2048:
        raise ValueError("must be at most 2048 characters")
    if not re.match(r"^https?://[^\s/?#]+", value, re.IGNORECASE):
        raise ValueError("must be an http:// or https:// URL")
    if any(c.isspace() or ord(c) < 32 for c in value):
        raise ValueError("must not contain whitespace or control characters")
    return value


class TaskFields(BaseModel):
    """Writable task fields shared by create and update."""

    model_config = ConfigDict(extra="ignore")

    url: str | None = None
    name: str | None = Field(default=None, min_length=1, max_length=200)
    method: Method | None = None
    headers: dict[str, str] | None = None
    body: Any = None
    timezone: str | None = Field(default=None, max_length=64)
    timeout_ms: StrictInt | None = Field(default=None, ge=1000, le=300000)
    retry_attempts: StrictInt | None = Field(default=None, ge=0, le=10)
    callback_url: str | None = None
    failure_callback_url: str | None = None
    expected_status_codes: str | None = Field(default=None, max_length=200)
    expected_body_pattern: str | None = Field(default=None, max_length=1000)
    queue: str | None = Field(
        default=None,
        description=f"named queue: runs one execution at a time, oldest first; {QUEUE_NAME_HELP}",
        json_schema_extra={"pattern": QUEUE_NAME_PATTERN},
    )
    notify_on_failure: StrictBool | None = None
    notify_on_recovery: StrictBool | None = None
    on_failure_url: str | None = None
    on_recovery_url: str | None = None
    alert_after: StrictInt | None = Field(default=None, ge=1, le=100)
    enabled: StrictBool | None = None

    @field_validator("method", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("queue")
    @classmethod
    def _queue(cls, value: str | None) -> str | None:
        return check_queue_name(value)

    @field_validator(
        "url", "callback_url", "failure_callback_url", "on_failure_url", "on_recovery_url"
    )
    @classmethod
    def _urls(cls, value: str | None) -> str | None:
        return _http_url(value)

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        if value is None:
            return None
        seen: set[str] = set()
        for name, header_value in value.items():
            lower = name.lower()
            if not _TOKEN.fullmatch(name):
                raise ValueError(f"invalid header name {name!r}")
            if lower in FORBIDDEN_HEADERS:
                raise ValueError(f"header {name!r} is set by Runlater and cannot be overridden")
            if lower in seen:
                raise ValueError(f"header {name!r} given twice")
            if any(c in header_value for c in "\r\n\x00"):
                raise ValueError(f"header {name!r} contains a line break or NUL")
            if not _HEADER_VALUE.fullmatch(header_value):
                raise ValueError(f"header {name!r} may contain only printable ASCII characters")
            seen.add(lower)
        if len(value) > 50:
            raise ValueError("at most 50 headers")
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            ZoneInfo(value.strip())
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise ValueError(f"unknown time zone {value!r} (expected an IANA name)") from None
        return value.strip()

    @field_validator("body", mode="before")
    @classmethod
    def _body(cls, value: Any) -> str | None:
        if value is None or isinstance(value, str):
            text = value
        else:
            text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
        if text is not None and len(text.encode("utf-8")) > MAX_BODY_BYTES:
            raise ValueError("must be at most 256 KiB")
        return text

    @field_validator("expected_status_codes")
    @classmethod
    def _codes(cls, value: str | None) -> str | None:
        return check_status_codes(value)

    @field_validator("expected_body_pattern")
    @classmethod
    def _pattern(cls, value: str | None) -> str | None:
        if value is not None:
            # Checked before compiling: compiling is where a large expansion costs.
            if pattern_expansion(value) > MAX_PATTERN_EXPANSION:
                raise ValueError(
                    "repeats too much: counted repetitions ({n}, {n,m}) may expand the pattern "
                    f"to at most {MAX_PATTERN_EXPANSION:,} characters"
                )
            try:
                regex.compile(value)
            except regex.error as exc:
                raise ValueError(f"not a valid regular expression: {exc}") from None
        return value


# Every key a task body may hold: the writable fields, the timing keys and their aliases.
TASK_KEYS = frozenset(TaskFields.model_fields) | {
    "cron",
    "cron_expression",
    "delay",
    "run_at",
    "scheduled_at",
}


def unwrap(payload: Any, singular: str) -> dict[str, Any]:
    """Accept flat bodies and ones wrapped in the resource's singular name; merge aliases."""
    return read_body(payload, singular, TASK_KEYS, _ALIASES)


def validate_fields(payload: dict[str, Any]) -> TaskFields:
    return validate_model(TaskFields, payload)


M = TypeVar("M", bound=BaseModel)


def validate_model(model: type[M], payload: dict[str, Any]) -> M:
    """``payload`` validated by ``model``, or 422 with each problem under its field's name."""
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        details: dict[str, list[str]] = {}
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else "body"
            message = error["msg"].removeprefix("Value error, ")
            details.setdefault(field, []).append(message)
        raise invalid(details) from None


def _shown(value: Any, limit: int = 60) -> str:
    """A JSON value as the caller sent it, cut short for an error message."""
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


DELAY_FORMS = "'30s', '5m', '2h', '1d', or seconds as a number (e.g. 90)"


def parse_delay(value: Any) -> float:
    if isinstance(value, int) and not isinstance(value, bool):
        seconds = value
    elif isinstance(value, str) and (match := _DELAY.match(value)):
        seconds = int(match[1]) * _UNITS[match[2]]
    else:
        raise InvalidInput(
            "invalid_delay", f"delay {_shown(value)} is not a delay; accepted forms: {DELAY_FORMS}"
        )
    if seconds < 0 or seconds > MAX_DELAY_S:
        raise InvalidInput(
            "invalid_delay",
            f"delay must be between 0 seconds and 366 days; accepted forms: {DELAY_FORMS}",
        )
    return float(seconds)


def parse_run_at(value: Any, now: datetime) -> datetime:
    message = "run_at must be an ISO-8601 timestamp with an offset, e.g. 2026-01-01T09:00:00Z"
    if not isinstance(value, str):
        raise InvalidInput("invalid_run_at", message)
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput("invalid_run_at", message) from None
    if when.tzinfo is None or when.utcoffset() is None:
        raise InvalidInput("invalid_run_at", message)
    try:
        when = when.astimezone(UTC)
    except OverflowError:
        raise InvalidInput("invalid_run_at", "run_at is out of range") from None
    if when < now - timedelta(seconds=RUN_AT_MAX_PAST_S):
        raise InvalidInput("invalid_run_at", "run_at is more than 5 minutes in the past")
    return when
