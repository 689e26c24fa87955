"""The shape of inbound endpoint payloads (``POST/PATCH /endpoints``, sync items), of a replay
request, and of the answers (endpoints, events, forwards).

``EndpointFields`` is both the validator of a request and its OpenAPI schema. What a payload
means (defaults, a new slug, what an edit changes) is ``runlater.domain.inbound``.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    field_validator,
    model_validator,
)

from runlater.errors import InvalidInput
from runlater.schemas.tasks import MAX_BODY_BYTES, Method, TaskFields, _http_url, validate_model
from runlater.schemas.unknown import read_body

MAX_FORWARD_URLS = 10
MAX_REPLAY_EVENTS = 1000
DEFAULT_TOLERANCE_S = 300
SLUG_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{2,63}$"
_SLUG = re.compile(SLUG_PATTERN)
_URL_PATTERN = r"^[Hh][Tt][Tt][Pp][Ss]?://[^\s/?#]+\S*$"
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
Scheme = Literal["stripe", "github", "standard_webhooks", "hmac"]
EventStatus = Literal["received", "rejected"]


class VerifyFields(BaseModel):
    """How the sender's signature is checked; a request that fails is answered 401 and
    recorded as ``rejected`` (never forwarded)."""

    model_config = ConfigDict(extra="forbid")

    scheme: Scheme = Field(
        description="`stripe` (Stripe-Signature), `github` (X-Hub-Signature-256), "
        "`standard_webhooks` (webhook-id/-timestamp/-signature), or `hmac` (a header of your "
        "choice holding the HMAC-SHA256 of the body)"
    )
    secret: str = Field(
        min_length=1,
        max_length=500,
        description="the signing secret the sender gave you (Standard Webhooks: `whsec_...`)",
    )
    header: str | None = Field(
        default=None, max_length=200, description="`hmac` only (required): the header's name"
    )
    encoding: Literal["hex", "base64"] | None = Field(
        default=None, description="`hmac` only: how the digest is written (default hex)"
    )
    tolerance_s: StrictInt | None = Field(
        default=None,
        ge=1,
        le=86400,
        description="`stripe` and `standard_webhooks`: how far the signed timestamp may be from "
        "now, in seconds (default 300)",
    )

    @model_validator(mode="after")
    def _scheme_fields(self) -> VerifyFields:
        if self.scheme == "hmac":
            if not self.header:
                raise ValueError("the hmac scheme needs `header`: the name of the signature header")
            if not _HEADER_NAME.fullmatch(self.header):
                raise ValueError(f"invalid header name {self.header!r}")
        elif self.header is not None or self.encoding is not None:
            raise ValueError("`header` and `encoding` are for the hmac scheme only")
        if self.scheme == "standard_webhooks":
            try:
                base64.b64decode(self.secret.removeprefix("whsec_"), validate=True)
            except (binascii.Error, ValueError):
                raise ValueError(
                    "a Standard Webhooks secret is `whsec_` followed by base64"
                ) from None
        return self


class EndpointFields(BaseModel):
    """The writable fields of an inbound endpoint. A new endpoint needs ``name``."""

    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "examples": [
                {
                    "name": "stripe",
                    "forward_urls": ["https://example.com/hooks/stripe"],
                    "verify": {"scheme": "stripe", "secret": "whsec_abc123"},
                },
                {
                    "name": "github pushes",
                    "forward_urls": ["https://ci.example.com/hook", "https://example.com/log"],
                    "use_queue": True,
                },
            ]
        },
    )

    name: str | None = Field(default=None, min_length=1, max_length=200)
    slug: str | None = Field(
        default=None,
        description="the public URL's last part: /in/{slug} (3-64 letters, digits, _ and -); "
        "left out, an unguessable one of 24 characters is made",
        json_schema_extra={"pattern": SLUG_PATTERN},
    )
    forward_urls: list[str] | None = Field(
        default=None,
        max_length=MAX_FORWARD_URLS,
        description="each event is forwarded to each URL as a one-time task with retries",
    )
    enabled: StrictBool | None = Field(
        default=None, description="a disabled endpoint answers 410 and stores nothing"
    )
    retry_attempts: StrictInt | None = Field(
        default=None, ge=0, le=10, description="retries of each forward (default 5)"
    )
    use_queue: StrictBool | None = Field(
        default=None,
        description="forward one at a time, in the order received (the named queue "
        "`endpoint:{id}`); default false",
    )
    forward_method: Method | None = Field(
        default=None, description="forward with this method (null: the method received)"
    )
    forward_headers: dict[str, str] | None = Field(
        default=None, description="headers set on each forward, over the ones received"
    )
    forward_body: str | None = Field(
        default=None,
        description="forward this body instead of the one received (null: as received)",
    )
    forward_authorization: StrictBool | None = Field(
        default=None,
        description="forward the received Authorization header too (default false: dropped)",
    )
    verify: VerifyFields | None = Field(
        default=None, description="check the sender's signature (null: no check)"
    )
    notify_on_failure: StrictBool | None = None
    notify_on_recovery: StrictBool | None = None
    on_failure_url: str | None = Field(default=None, max_length=2048, pattern=_URL_PATTERN)
    on_recovery_url: str | None = Field(default=None, max_length=2048, pattern=_URL_PATTERN)
    alert_after: StrictInt | None = Field(
        default=None, ge=1, le=100, description="consecutive failed forwards before a notification"
    )

    @field_validator("slug")
    @classmethod
    def _slug(cls, value: str | None) -> str | None:
        if value is not None and not _SLUG.fullmatch(value):
            raise ValueError(
                "must be 3-64 letters, digits, _ and -, starting with a letter or digit"
            )
        return value

    @field_validator("forward_urls")
    @classmethod
    def _forward_urls(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        for url in value:
            _http_url(url)
        if len(set(value)) != len(value):
            raise ValueError("a URL is given twice")
        return value

    @field_validator("forward_method", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("forward_headers")
    @classmethod
    def _headers(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        if value is None:
            return None
        try:
            validate_model(TaskFields, {"headers": value})
        except InvalidInput as exc:
            raise ValueError("; ".join((exc.details or {}).get("headers", [exc.message]))) from None
        return value

    @field_validator("forward_body")
    @classmethod
    def _body(cls, value: str | None) -> str | None:
        if value is not None and len(value.encode("utf-8")) > MAX_BODY_BYTES:
            raise ValueError("must be at most 256 KiB")
        return value

    @field_validator("on_failure_url", "on_recovery_url", mode="before")
    @classmethod
    def _urls(cls, value: Any) -> Any:
        return _http_url(value) if isinstance(value, str) else value


def parse_endpoint(payload: Any) -> tuple[dict[str, Any], EndpointFields]:
    """The body's keys and its validated fields, or 422 naming each problem. A body may be
    wrapped as ``{"endpoint": {...}}``."""
    data = read_body(payload, "endpoint", EndpointFields.model_fields)
    return data, validate_model(EndpointFields, data)


class ReplayRequest(BaseModel):
    """Which events of the endpoint to forward again (all given filters apply; oldest first,
    at most 1,000 events per request)."""

    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "examples": [
                {"since": "2026-01-02T00:00:00Z", "until": "2026-01-03T00:00:00Z"},
                {"event_ids": ["0190f1c2-7a4b-7c3d-9e8f-1a2b3c4d5e72"]},
            ]
        },
    )

    event_ids: list[UUID] | None = Field(
        default=None, max_length=MAX_REPLAY_EVENTS, description="only these events"
    )
    status: EventStatus | None = Field(
        default=None,
        description="only events of this status (default `received`: a rejected event is "
        "replayed only when asked for by status or id)",
    )
    since: datetime | None = Field(default=None, description="received at or after")
    until: datetime | None = Field(default=None, description="received before")
    limit: StrictInt | None = Field(
        default=None, ge=1, le=MAX_REPLAY_EVENTS, description="at most this many events (1000)"
    )

    @field_validator("since", "until")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.utcoffset() is None:
            raise ValueError(
                "must be an ISO-8601 timestamp with an offset, e.g. 2026-01-01T09:00:00Z"
            )
        return value


def parse_replay(payload: Any) -> ReplayRequest:
    data = read_body(payload, "replay", ReplayRequest.model_fields)
    return validate_model(ReplayRequest, data)


# ------------------------------------------------------------------------------ answers


ENDPOINT_EXAMPLE: dict[str, Any] = {
    "id": "0190f1c2-7a4b-7c3d-9e8f-1a2b3c4d5e80",
    "name": "stripe",
    "slug": "k3v9x2m7q4w8z1c5b6n0p2r7",
    "inbound_url": "https://runlater.example/in/k3v9x2m7q4w8z1c5b6n0p2r7",
    "forward_urls": ["https://example.com/hooks/stripe"],
    "enabled": True,
    "retry_attempts": 5,
    "use_queue": False,
    "forward_headers": {},
    "forward_body": None,
    "forward_method": None,
    "forward_authorization": False,
    "verify": {
        "scheme": "stripe",
        "secret": "whsec_abc123",
        "header": None,
        "encoding": None,
        "tolerance_s": 300,
    },
    "notify_on_failure": True,
    "notify_on_recovery": True,
    "on_failure_url": None,
    "on_recovery_url": None,
    "alert_after": 1,
    "inserted_at": "2026-01-02T10:00:00.000Z",
    "updated_at": "2026-01-02T10:00:00.000Z",
}
EVENT_EXAMPLE: dict[str, Any] = {
    "id": "0190f1c2-7a4b-7c3d-9e8f-1a2b3c4d5e81",
    "endpoint_id": "0190f1c2-7a4b-7c3d-9e8f-1a2b3c4d5e80",
    "status": "received",
    "reason": None,
    "method": "POST",
    "path": "",
    "query": "",
    "headers": {"content-type": "application/json", "stripe-signature": "t=1767348000,v1=5f2b"},
    "encoding": "utf-8",
    "body": '{"type":"invoice.paid"}',
    "body_base64": None,
    "size": 23,
    "source_ip": "203.0.113.7",
    "received_at": "2026-01-02T10:00:00.000Z",
}
FORWARD_EXAMPLE: dict[str, Any] = {
    "task_id": "0190f1c2-7a4b-7c3d-9e8f-1a2b3c4d5e82",
    "url": "https://example.com/hooks/stripe",
    "method": "POST",
    "execution_id": "0190f1c2-7a4b-7c3d-9e8f-1a2b3c4d5e83",
    "status": "success",
    "attempt": 1,
    "status_code": 200,
    "error_message": None,
    "scheduled_for": "2026-01-02T10:00:00.000Z",
    "finished_at": "2026-01-02T10:00:00.250Z",
}


class Verify(BaseModel):
    scheme: Scheme
    secret: str
    header: str | None
    encoding: Literal["hex", "base64"] | None
    tolerance_s: int


class Endpoint(BaseModel):
    """An inbound endpoint: it records what is sent to ``inbound_url`` and forwards it."""

    model_config = ConfigDict(json_schema_extra={"examples": [ENDPOINT_EXAMPLE]})

    id: UUID
    name: str
    slug: str
    inbound_url: str = Field(description="send webhooks here (any method but CONNECT/TRACE)")
    forward_urls: list[str]
    enabled: bool
    retry_attempts: int
    use_queue: bool
    forward_headers: dict[str, str]
    forward_body: str | None
    forward_method: Method | None
    forward_authorization: bool
    verify: Verify | None
    notify_on_failure: bool
    notify_on_recovery: bool
    on_failure_url: str | None
    on_recovery_url: str | None
    alert_after: int
    inserted_at: datetime
    updated_at: datetime


class InboundEvent(BaseModel):
    """One request an endpoint received. The body is byte-exact: ``encoding`` `utf-8` gives it
    as text in ``body``, `base64` (not UTF-8 text, or holding NUL) in ``body_base64``."""

    model_config = ConfigDict(json_schema_extra={"examples": [EVENT_EXAMPLE]})

    id: UUID
    endpoint_id: UUID
    status: EventStatus
    reason: str | None = Field(description="why it was rejected")
    method: str
    path: str = Field(description="what followed /in/{slug} (empty, or starting with /)")
    query: str = Field(description="the query string, without `?`")
    headers: dict[str, str] = Field(description="as received (names in lower case)")
    encoding: Literal["utf-8", "base64"]
    body: str | None
    body_base64: str | None
    size: int = Field(description="the body's length in bytes")
    source_ip: str | None
    received_at: datetime


class EventForward(BaseModel):
    """One forward of an event (a one-time task) and its latest execution."""

    model_config = ConfigDict(json_schema_extra={"examples": [FORWARD_EXAMPLE]})

    task_id: UUID
    url: str
    method: str
    execution_id: UUID | None
    status: str | None = Field(description="pending, running, success, failed, timeout, ...")
    attempt: int | None
    status_code: int | None
    error_message: str | None
    scheduled_for: datetime | None
    finished_at: datetime | None


class InboundEventDetail(InboundEvent):
    """An event with its forwards (every replay adds one per forward URL)."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{**EVENT_EXAMPLE, "forwards": [FORWARD_EXAMPLE]}]}
    )

    forwards: list[EventForward]


class EventQuery(BaseModel):
    status: EventStatus | None = None
    since: datetime | None = Field(default=None, description="received at or after")
    until: datetime | None = Field(default=None, description="received before")
    limit: int = Field(default=50, ge=1, le=100)
    offset: int = Field(default=0, ge=0)


class Received(BaseModel):
    """The answer of ``/in/{slug}``."""

    id: UUID
    status: Literal["received"]


class ReplayResult(BaseModel):
    """What a replay made: ``events`` replayed, ``forwards`` (one-time tasks) created."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"events": 3, "forwards": 6}]})

    events: int
    forwards: int
