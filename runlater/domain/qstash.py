"""QStash requests as Runlater tasks: the ``Upstash-*`` headers of ``/v2`` calls, parsed.

Pure functions: a publish, enqueue, batch item or schedule becomes a ``POST /api/v1/tasks``
body (``TaskService.create``), its raw body and its deduplication key. Every ``Upstash-*``
header is either understood or refused with an ``InvalidInput`` whose message names it (the
web layer answers 400): nothing a QStash client asks for is dropped silently. Field names in
errors that come from the task schema are translated back to the header they came from
(:func:`header_of`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from runlater.domain.service import TaskService
from runlater.domain.tasks import DEFAULT_TIMEOUT_MS
from runlater.errors import InvalidInput
from runlater.store.qstash import QStashPort

# QStash's defaults where Runlater's differ: 3 retries, POST, for messages and schedules.
DEFAULT_RETRIES = 3
DEFAULT_METHOD = "POST"
MAX_RETRIES = 10
MIN_TIMEOUT_S, MAX_TIMEOUT_S = 1, 300
MAX_DELAY_S = 366 * 86400
MAX_DEDUP_ID_CHARS = 200
# Records in ``idempotency_keys`` under this prefix are QStash deduplication ids.
DEDUP_PREFIX = "qstash-dedup:"

_DURATION = re.compile(r"^(?:(\d+)([smhd]))+$")
_DURATION_PART = re.compile(r"(\d+)([smhd])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DESTINATION = re.compile(r"^https?://", re.IGNORECASE)
_CRON_TZ = re.compile(r"^\s*CRON_TZ=(\S+)\s+(.+)$")

FORWARD = "upstash-forward-"
# Headers understood on publish/enqueue/batch, and on schedules.
MESSAGE_HEADERS = frozenset(
    {
        "upstash-method",
        "upstash-delay",
        "upstash-not-before",
        "upstash-retries",
        "upstash-callback",
        "upstash-failure-callback",
        "upstash-deduplication-id",
        "upstash-content-based-deduplication",
        "upstash-timeout",
        "upstash-label",
    }
)
SCHEDULE_HEADERS = frozenset(
    {
        "upstash-cron",
        "upstash-method",
        "upstash-retries",
        "upstash-callback",
        "upstash-failure-callback",
        "upstash-timeout",
        "upstash-schedule-id",
        "upstash-queue-name",
        "upstash-label",
    }
)
# Why a known QStash header has no Runlater equivalent (the 400's message).
UNSUPPORTED = {
    "upstash-retry-delay": "custom retry delays are not supported (Runlater retries with "
    "exponential backoff)",
    "upstash-flow-control-key": "flow control is not supported (use a queue: it runs one "
    "message at a time)",
    "upstash-flow-control-value": "flow control is not supported (use a queue: it runs one "
    "message at a time)",
    "upstash-redact-fields": "redacting logged fields is not supported",
    "upstash-callback-": "headers for the callback are not supported",
    "upstash-failure-callback-": "headers for the failure callback are not supported",
    "upstash-topic": "URL groups (topics) are not supported",
    "upstash-url-group": "URL groups (topics) are not supported",
}
# What a task-schema field is called in a QStash request.
_HEADER_OF_FIELD = {
    "url": "destination",
    "method": "Upstash-Method",
    "headers": "Upstash-Forward-*",
    "body": "body",
    "retry_attempts": "Upstash-Retries",
    "timeout_ms": "Upstash-Timeout",
    "callback_url": "Upstash-Callback",
    "failure_callback_url": "Upstash-Failure-Callback",
    "queue": "queue",
    "name": "Upstash-Label",
    "cron_expression": "Upstash-Cron",
    "timezone": "Upstash-Cron",
    "delay": "Upstash-Delay",
    "scheduled_at": "Upstash-Not-Before",
}


def display(name: str) -> str:
    """A header name as QStash documents it (``upstash-not-before`` -> ``Upstash-Not-Before``)."""
    return "-".join(part[:1].upper() + part[1:] for part in name.lower().split("-"))


def header_of(field: str) -> str:
    """The QStash header (or part) a task field's error is about."""
    base = field.split(".", 1)[0].split("[", 1)[0]
    return _HEADER_OF_FIELD.get(base, field)


def refused(header: str, problem: str) -> InvalidInput:
    """The error for one header: its message starts with the header's name."""
    return InvalidInput("validation_error", f"{header}: {problem}", {header: [problem]})


@dataclass(frozen=True, slots=True)
class MessageDraft:
    """A message to publish: the task body (``TaskService.create``), the raw body, and the
    namespaced deduplication key (None without deduplication)."""

    payload: dict[str, Any]
    body: bytes | None
    dedup_key: str | None


@dataclass(frozen=True, slots=True)
class ScheduleDraft:
    """A schedule to create (``schedule_id`` None) or to replace: the cron task's body."""

    payload: dict[str, Any]
    body: bytes | None
    schedule_id: UUID | None


def parse_duration(value: str, header: str, *, low_s: int, high_s: int) -> int:
    """Seconds of a QStash duration: ``10s``, ``5m``, ``2h``, ``1d``, compounds like ``1h30m``,
    or a bare number of seconds; within ``low_s..high_s``."""
    text = value.strip().lower()
    if text.isdigit():
        seconds = int(text)
    elif _DURATION.fullmatch(text):
        seconds = sum(int(n) * _UNITS[unit] for n, unit in _DURATION_PART.findall(text))
    else:
        raise refused(header, f"{value!r} is not a duration; use forms like 10s, 5m, 2h, 1d")
    if not low_s <= seconds <= high_s:
        raise refused(header, f"must be between {low_s} and {high_s} seconds")
    return seconds


def parse_cron(value: str) -> tuple[str, str]:
    """The expression and time zone of ``Upstash-Cron`` (``CRON_TZ=Zone`` prefix, else UTC)."""
    match = _CRON_TZ.match(value)
    if match:
        return match[2].strip(), match[1]
    if value.strip().upper().startswith("CRON_TZ="):
        raise refused("Upstash-Cron", "CRON_TZ=<zone> must be followed by a cron expression")
    return value.strip(), "UTC"


def destination_url(raw: str) -> str:
    """The destination of ``/v2/publish/{destination}``: an http(s) URL (the path's rest plus
    the request's query string, which belongs to it)."""
    if not _DESTINATION.match(raw):
        raise refused(
            "destination",
            "must be an http:// or https:// URL; URL groups (topics) and API destinations "
            "are not supported",
        )
    return raw


def _refuse_unknown(names: Iterable[str], allowed: frozenset[str], where: str) -> None:
    for name in names:
        if not name.startswith("upstash-") or name.startswith(FORWARD) or name in allowed:
            continue
        for prefix, why in UNSUPPORTED.items():
            if name == prefix or (prefix.endswith("-") and name.startswith(prefix)):
                raise refused(display(name), why)
        raise refused(display(name), f"is not supported on {where}")


def _forwarded(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """``Upstash-Forward-X: v`` and ``Content-Type`` as the headers sent to the destination
    (several values of one header joined with ``, ``)."""
    out: dict[str, str] = {}
    for name, value in headers:
        if name.startswith(FORWARD) and len(name) > len(FORWARD):
            key = display(name[len(FORWARD) :])
        elif name == "content-type":
            key = "Content-Type"
        else:
            continue
        out[key] = f"{out[key]}, {value}" if key in out else value
    return out


def _retries(value: str) -> int:
    text = value.strip()
    if not text.isdigit() or int(text) > MAX_RETRIES:
        raise refused(
            "Upstash-Retries", f"must be an integer between 0 and {MAX_RETRIES} (Runlater's limit)"
        )
    return int(text)


def _flag(value: str, header: str) -> bool:
    text = value.strip().lower()
    if text not in ("true", "false"):
        raise refused(header, "must be true or false")
    return text == "true"


def _common(one: Mapping[str, str], payload: dict[str, Any]) -> None:
    """The fields messages and schedules share."""
    method = one.get("upstash-method")
    payload["method"] = (method or DEFAULT_METHOD).strip().upper()
    retries = one.get("upstash-retries")
    payload["retry_attempts"] = DEFAULT_RETRIES if retries is None else _retries(retries)
    if (timeout := one.get("upstash-timeout")) is not None:
        seconds = parse_duration(
            timeout, "Upstash-Timeout", low_s=MIN_TIMEOUT_S, high_s=MAX_TIMEOUT_S
        )
        payload["timeout_ms"] = seconds * 1000
    if (callback := one.get("upstash-callback")) is not None:
        payload["callback_url"] = callback.strip()
    if (failure := one.get("upstash-failure-callback")) is not None:
        payload["failure_callback_url"] = failure.strip()
    if (label := one.get("upstash-label")) is not None:
        payload["name"] = label


def _lowered(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(name.lower(), value) for name, value in headers]


def _single(pairs: list[tuple[str, str]]) -> dict[str, str]:
    """The Upstash-* headers by name; one given twice is refused (which would count?)."""
    one: dict[str, str] = {}
    for name, value in pairs:
        if name.startswith("upstash-") and not name.startswith(FORWARD):
            if name in one:
                raise refused(display(name), "is given more than once")
            one[name] = value
    return one


def content_key(destination: str, method: str, body: bytes, forwarded: Mapping[str, str]) -> str:
    """The content-based deduplication key: sha256 of destination, method, the forwarded
    headers (sorted, names lowercased) and the body."""
    digest = hashlib.sha256()
    for part in (destination, method):
        digest.update(part.encode())
        digest.update(b"\n")
    for name in sorted(forwarded, key=str.lower):
        digest.update(f"{name.lower()}:{forwarded[name]}\n".encode())
    digest.update(b"\n")
    digest.update(body)
    return digest.hexdigest()


def parse_message(
    destination: str,
    headers: Iterable[tuple[str, str]],
    body: bytes,
    now: datetime,
    *,
    queue: str | None = None,
) -> MessageDraft:
    """A publish (or, with ``queue``, an enqueue or a batch item with a queue) as a one-time
    task. ``Upstash-Not-Before`` (unix seconds) wins over ``Upstash-Delay``, as in QStash; a
    time already past runs now."""
    pairs = _lowered(headers)
    _refuse_unknown((n for n, _ in pairs), MESSAGE_HEADERS, "messages")
    one = _single(pairs)
    url = destination_url(destination)
    forwarded = _forwarded(pairs)
    payload: dict[str, Any] = {"url": url, "headers": forwarded}
    _common(one, payload)
    if queue is not None:
        payload["queue"] = queue
    not_before = one.get("upstash-not-before")
    delay = one.get("upstash-delay")
    if not_before is not None:
        text = not_before.strip()
        if not text.isdigit():
            raise refused("Upstash-Not-Before", "must be a unix timestamp in seconds")
        payload["delay"] = min(max(0, int(text) - int(now.timestamp())), MAX_DELAY_S + 1)
        if payload["delay"] > MAX_DELAY_S:
            raise refused("Upstash-Not-Before", "must be at most 366 days from now")
    elif delay is not None:
        payload["delay"] = parse_duration(delay, "Upstash-Delay", low_s=0, high_s=MAX_DELAY_S)
    dedup_key = None
    if (dedup_id := one.get("upstash-deduplication-id")) is not None:
        if not 1 <= len(dedup_id) <= MAX_DEDUP_ID_CHARS:
            raise refused(
                "Upstash-Deduplication-Id", f"must be 1 to {MAX_DEDUP_ID_CHARS} characters long"
            )
        dedup_key = f"{DEDUP_PREFIX}{dedup_id}"
    content = one.get("upstash-content-based-deduplication")
    wanted = content is not None and _flag(content, "Upstash-Content-Based-Deduplication")
    if wanted and dedup_key is None:
        key = content_key(url, payload["method"], body, forwarded)
        dedup_key = f"{DEDUP_PREFIX}content:{key}"
    return MessageDraft(payload, body or None, dedup_key)


def parse_schedule(
    destination: str, headers: Iterable[tuple[str, str]], body: bytes
) -> ScheduleDraft:
    """``POST /v2/schedules/{destination}`` as a cron task; ``Upstash-Schedule-Id`` names an
    existing schedule to replace (Runlater's ids are its own: a new id cannot be chosen)."""
    pairs = _lowered(headers)
    _refuse_unknown((n for n, _ in pairs), SCHEDULE_HEADERS, "schedules")
    one = _single(pairs)
    cron = one.get("upstash-cron")
    if cron is None or not cron.strip():
        raise refused("Upstash-Cron", "is required")
    expression, zone = parse_cron(cron)
    payload: dict[str, Any] = {
        "url": destination_url(destination),
        "headers": _forwarded(pairs),
        "cron_expression": expression,
        "timezone": zone,
    }
    _common(one, payload)
    if (queue := one.get("upstash-queue-name")) is not None:
        payload["queue"] = queue
    schedule_id = None
    if (raw := one.get("upstash-schedule-id")) is not None:
        try:
            schedule_id = UUID(raw.strip())
        except ValueError:
            raise refused(
                "Upstash-Schedule-Id",
                "must be the scheduleId of an existing schedule (Runlater chooses schedule ids)",
            ) from None
    return ScheduleDraft(payload, body or None, schedule_id)


def cron_header(expression: str, timezone: str) -> str:
    """A schedule's ``cron`` as QStash shows it: with ``CRON_TZ=`` unless the zone is UTC."""
    return expression if timezone == "UTC" else f"CRON_TZ={timezone} {expression}"


def batch_item(item: Any, index: int) -> tuple[str, list[tuple[str, str]], bytes, str | None]:
    """One ``POST /v2/batch`` item (``destination``, ``headers``, ``body``, ``queue``): its
    destination, headers, body bytes and queue."""
    where = f"batch[{index}]"
    if not isinstance(item, dict):
        raise refused(where, "must be an object with destination, headers, body, queue")
    unknown = sorted(set(item) - {"destination", "headers", "body", "queue"})
    if unknown:
        raise refused(f"{where}.{unknown[0]}", "is not a known field")
    destination = item.get("destination")
    if not isinstance(destination, str):
        raise refused(f"{where}.destination", "is required (a URL)")
    raw_headers = item.get("headers") or {}
    if not isinstance(raw_headers, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in raw_headers.items()
    ):
        raise refused(f"{where}.headers", "must be an object of strings")
    body = item.get("body")
    if body is not None and not isinstance(body, str):
        raise refused(f"{where}.body", "must be a string")
    queue = item.get("queue")
    if queue is not None and not isinstance(queue, str):
        raise refused(f"{where}.queue", "must be a string")
    return destination, list(raw_headers.items()), (body or "").encode(), queue


@dataclass(frozen=True, slots=True)
class Published:
    """What a publish answers: the message's id, and whether it was a duplicate (then the id
    is the first message's, and nothing new was made)."""

    message_id: str
    deduplicated: bool

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"messageId": self.message_id}
        if self.deduplicated:
            out["deduplicated"] = True
        return out


async def publish(
    tasks: TaskService, store: QStashPort, org_id: UUID, draft: MessageDraft, path: str
) -> Published:
    """Create the message's task (origin 'qstash'), unless its deduplication key already made
    one in the last 24 hours. The URLs are checked before the key is taken (no lock is held
    while a host name resolves)."""
    key = draft.dedup_key
    if key is not None:
        await tasks.urls.check(draft.payload)
        found = await store.take_qstash_dedup(org_id, key)
        if found is not None:
            return Published(found, True)
    created = await tasks.create(org_id, draft.payload, origin="qstash", body_bytes=draft.body)
    message_id = str(created.value["id"])
    if key is not None:
        await store.keep_qstash_dedup(org_id, key, path, message_id)
    return Published(message_id, False)


def replacement(draft: ScheduleDraft) -> dict[str, Any]:
    """The ``PATCH /tasks/{id}`` body that makes an existing schedule what ``draft`` says:
    every field QStash's schedule has, so nothing of the old one remains."""
    payload = {
        "callback_url": None,
        "failure_callback_url": None,
        "queue": None,
        "timeout_ms": DEFAULT_TIMEOUT_MS,
        "body": None,
        **draft.payload,
    }
    if draft.body is not None:
        try:
            text = draft.body.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        if text is None or "\x00" in text:
            raise refused(
                "Upstash-Schedule-Id", "replacing a schedule with a non-UTF-8 body is not supported"
            )
        payload["body"] = text
    return payload
