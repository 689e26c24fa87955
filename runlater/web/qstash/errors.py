"""QStash's error shape, ``{"error": "<message>"}``, for every answer under ``/v2``.

The ``qstash`` SDK raises ``QStashError`` with the status and this body for any non-2xx answer
(and its rate-limit errors for 429). Errors of the task schema name Runlater's fields; here
they are named by the QStash header they came from (``retry_attempts`` -> ``Upstash-Retries``).
"""

from __future__ import annotations

import logging
from typing import Any

from quart import Blueprint, Response, jsonify
from werkzeug.exceptions import HTTPException

from runlater.domain.qstash import header_of
from runlater.errors import (
    InvalidInput,
    LimitExceeded,
    NotFound,
    StoreUnavailable,
    TransientConflict,
)
from runlater.store.transaction import KeyInProgress, KeyMismatch, KeyReplay
from runlater.web import idempotency
from runlater.web.errors import ApiError
from runlater.web.transaction import RETRY_AFTER_S

log = logging.getLogger("runlater.web.qstash")


def answer(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    response = jsonify({"error": message})
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def input_message(exc: InvalidInput) -> str:
    """The message of an input error, naming the header (or part) each problem is about."""
    if not exc.details:
        return exc.message
    return "; ".join(
        f"{header_of(field)}: {problem}"
        for field, problems in exc.details.items()
        for problem in problems
    )


def install(bp: Blueprint) -> None:
    """Error handlers of the ``/v2`` blueprint (they win over the app's for its routes)."""

    @bp.errorhandler(ApiError)
    async def api_error(exc: ApiError) -> Any:
        return answer(exc.status, exc.message, exc.headers)

    @bp.errorhandler(InvalidInput)
    async def invalid_input(exc: InvalidInput) -> Any:
        return answer(413 if exc.code == "payload_too_large" else 400, input_message(exc))

    @bp.errorhandler(LimitExceeded)
    async def limit_exceeded(exc: LimitExceeded) -> Any:
        return answer(429, exc.message)

    @bp.errorhandler(NotFound)
    async def not_found(exc: NotFound) -> Any:
        return answer(404, str(exc) or "not found")

    @bp.errorhandler(StoreUnavailable)
    async def unavailable(exc: StoreUnavailable) -> Any:
        log.warning("request failed: database unavailable error=%s", exc)
        return answer(503, "the database is unavailable, try again", {"Retry-After": RETRY_AFTER_S})

    @bp.errorhandler(TransientConflict)
    async def busy(exc: TransientConflict) -> Any:
        log.warning("request failed: row busy error=%s", exc)
        message = "the resource is being changed by another request; try again"
        return answer(503, message, {"Retry-After": "1"})

    @bp.errorhandler(KeyInProgress)
    @bp.errorhandler(KeyMismatch)
    @bp.errorhandler(KeyReplay)
    async def idempotency_key(exc: KeyInProgress | KeyMismatch | KeyReplay) -> Any:
        if isinstance(exc, KeyReplay):
            return idempotency.replay(exc)
        error = idempotency.conflict() if isinstance(exc, KeyInProgress) else idempotency.mismatch()
        return answer(error.status, error.message)

    @bp.errorhandler(HTTPException)
    async def http_error(exc: HTTPException) -> Any:
        status = exc.code or 500
        if status == 413:
            return answer(413, "request body is too large")
        return answer(status, exc.description or exc.name)

    @bp.errorhandler(Exception)
    async def internal(exc: Exception) -> Any:
        log.error("unhandled error in request", exc_info=exc)
        return answer(500, "internal error")
