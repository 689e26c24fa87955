"""The ``/v2`` operations in the OpenAPI spec (``runlater/web/openapi.py`` hands them here):
their answers in QStash's shapes, errors as ``{"error": "<message>"}``, under the ``qstash``
tag. The schemas are written here by hand: they describe what the ``qstash`` SDK parses."""

from __future__ import annotations

from typing import Any

PREFIX = "/v2"
TAG = "qstash"
ERROR_COMPONENT = "QStashError"
ERROR_SCHEMA = {
    "type": "object",
    "description": "QStash's error shape",
    "properties": {"error": {"type": "string"}},
    "required": ["error"],
    "examples": [{"error": "Upstash-Retries: must be an integer between 0 and 10"}],
}
_ERROR_REF = {"$ref": f"#/components/schemas/{ERROR_COMPONENT}"}
_RETRY_AFTER = {
    "Retry-After": {
        "description": "seconds to wait before retrying",
        "schema": {"type": "integer", "minimum": 1},
    }
}
_WWW_AUTHENTICATE = {
    "WWW-Authenticate": {
        "description": "`Bearer`: how to authenticate",
        "schema": {"type": "string", "const": "Bearer"},
    }
}
MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})

_STR = {"type": "string"}
_INT = {"type": "integer"}
_HEADERS = {"type": "object", "additionalProperties": {"type": "array", "items": _STR}}
_PUBLISHED = {
    "type": "object",
    "properties": {"messageId": _STR, "deduplicated": {"type": "boolean"}},
    "required": ["messageId"],
}
_MESSAGE = {
    "type": "object",
    "properties": {
        "messageId": _STR,
        "url": _STR,
        "method": _STR,
        "header": _HEADERS,
        "body": _STR,
        "bodyBase64": _STR,
        "maxRetries": _INT,
        "notBefore": _INT,
        "createdAt": _INT,
        "callback": _STR,
        "failureCallback": _STR,
        "queueName": _STR,
        "scheduleId": _STR,
        "label": _STR,
    },
    "required": ["messageId", "url", "method", "maxRetries", "notBefore", "createdAt"],
}
_DLQ_MESSAGE = {
    **_MESSAGE,
    "properties": {
        **_MESSAGE["properties"],  # type: ignore[dict-item]
        "dlqId": _STR,
        "responseStatus": _INT,
        "responseBody": _STR,
    },
    "required": [*_MESSAGE["required"], "dlqId", "responseStatus"],
}
_SCHEDULE = {
    "type": "object",
    "properties": {
        "scheduleId": _STR,
        "destination": _STR,
        "cron": _STR,
        "createdAt": _INT,
        "method": _STR,
        "header": _HEADERS,
        "body": _STR,
        "bodyBase64": _STR,
        "retries": _INT,
        "timeout": _INT,
        "isPaused": {"type": "boolean"},
        "callback": _STR,
        "failureCallback": _STR,
        "queueName": _STR,
        "label": _STR,
        "nextScheduleTime": _INT,
        "lastScheduleTime": _INT,
    },
    "required": ["scheduleId", "destination", "cron", "createdAt", "method", "retries"],
}
_QUEUE = {
    "type": "object",
    "properties": {
        "name": _STR,
        "parallelism": {"type": "integer", "const": 1},
        "createdAt": _INT,
        "updatedAt": _INT,
        "lag": _INT,
        "paused": {"type": "boolean"},
    },
    "required": ["name", "parallelism", "createdAt", "updatedAt", "lag", "paused"],
}
_KEYS = {
    "type": "object",
    "properties": {"current": _STR, "next": _STR},
    "required": ["current", "next"],
}
# Each route's success: (status, JSON schema; None for an empty answer).
SUCCESS: dict[str, tuple[int, dict[str, Any] | None]] = {
    "publish": (201, _PUBLISHED),
    "enqueue": (201, _PUBLISHED),
    "batch": (201, {"type": "array", "items": _PUBLISHED}),
    "get_message": (200, _MESSAGE),
    "cancel_message": (200, None),
    "cancel_messages": (
        200,
        {"type": "object", "properties": {"cancelled": _INT}, "required": ["cancelled"]},
    ),
    "create_schedule": (
        201,
        {"type": "object", "properties": {"scheduleId": _STR}, "required": ["scheduleId"]},
    ),
    "list_schedules": (200, {"type": "array", "items": _SCHEDULE}),
    "get_schedule": (200, _SCHEDULE),
    "delete_schedule": (200, None),
    "pause_schedule": (200, None),
    "resume_schedule": (200, None),
    "upsert_queue": (200, None),
    "list_queues": (200, {"type": "array", "items": _QUEUE}),
    "get_queue": (200, _QUEUE),
    "delete_queue": (200, None),
    "pause_queue": (200, None),
    "resume_queue": (200, None),
    "signing_keys": (200, _KEYS),
    "rotate_signing_keys": (200, _KEYS),
    "list_dlq": (
        200,
        {
            "type": "object",
            "properties": {"messages": {"type": "array", "items": _DLQ_MESSAGE}, "cursor": _STR},
            "required": ["messages"],
        },
    ),
    "get_dlq": (200, _DLQ_MESSAGE),
    "delete_dlq": (200, None),
    "delete_dlq_many": (
        200,
        {"type": "object", "properties": {"deleted": _INT}, "required": ["deleted"]},
    ),
}
_ERRORS = {
    400: "a header or field Runlater cannot accept (the message names it)",
    401: "missing, malformed, unknown or revoked API key",
    404: "unknown id, another organization's id, or a malformed id",
    413: "the request body is over its size limit",
    429: "too many requests, or the plan's monthly limit",
    503: "the database is unreachable; retry after Retry-After seconds",
}
_IDEMPOTENCY_ERRORS = {
    409: "a request with the same Idempotency-Key is still in progress",
    422: "the Idempotency-Key was used before with a different request",
}


def example(schema: dict[str, Any]) -> Any:
    """An instance of one of the schemas above: its required fields, with plain values."""
    kind = schema.get("type")
    if "const" in schema:
        return schema["const"]
    if kind == "object":
        properties = schema.get("properties", {})
        return {name: example(properties[name]) for name in schema.get("required", ())}
    if kind == "array":
        return [example(schema["items"])]
    plain: dict[str, Any] = {"string": "text", "integer": 0, "boolean": False}
    return plain[str(kind)]


def complete(method: str, operation: dict[str, Any], name: str) -> dict[str, Any]:
    """A ``/v2`` operation as documented: tag, success and error answers."""
    operation = dict(operation)
    operation["tags"] = [TAG]
    operation["operationId"] = f"qstash_{name}"  # unique beside /api/v1's (list_queues)
    status, schema = SUCCESS[name]
    success: dict[str, Any] = {"description": "done"}
    if schema is not None:
        success["content"] = {"application/json": {"schema": schema, "example": example(schema)}}
    responses: dict[int, Any] = {status: success}
    if name == "create_schedule":  # 200: an existing schedule replaced (Upstash-Schedule-Id)
        responses[200] = success
    errors = {**_ERRORS, **(_IDEMPOTENCY_ERRORS if method in MUTATING else {})}
    for code, meaning in sorted(errors.items()):
        response: dict[str, Any] = {
            "description": meaning,
            "content": {"application/json": {"schema": _ERROR_REF}},
        }
        response["content"]["application/json"]["example"] = {"error": meaning}
        if code in (429, 503):
            response["headers"] = _RETRY_AFTER
        elif code == 401:
            response["headers"] = _WWW_AUTHENTICATE
        responses[code] = response
    operation["responses"] = responses
    return operation
