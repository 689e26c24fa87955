"""The QStash-compatible API under ``/v2``: the official ``qstash`` SDK works against Runlater
with ``base_url`` set to the node and a Runlater API key as its token (docs/qstash.md).

A thin front door on the domain layer: the same API-key authentication, rate limits, request
transaction, Idempotency-Key and audit log as ``/api/v1``; answers and errors in QStash's shape.
"""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Quart, request
from quart_schema import hide

from runlater.web import auth, ratelimit, transaction
from runlater.web.api import audit
from runlater.web.qstash import dlq, errors, keys, messages, queues, schedules, spec


def install(app: Quart, limits: ratelimit.RateLimits) -> None:
    """Register ``/v2`` with the API's hooks (``limits``: the app's rate limits)."""
    bp = Blueprint("qstash", __name__, url_prefix=spec.PREFIX)
    bp.before_request(limits.check_client)
    bp.before_request(auth.authenticate)
    bp.before_request(limits.check_key)
    bp.before_request(transaction.begin)
    bp.after_request(audit.record)
    errors.install(bp)
    for child in (messages.bp, schedules.bp, queues.bp, keys.bp, dlq.bp):
        bp.register_blueprint(child)

    @bp.route("/<path:rest>", methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"])
    @hide  # not an operation: the answer for any path /v2 does not have
    async def unknown(rest: str) -> Any:
        return errors.answer(404, f"no such route: {request.method} {request.path}")

    app.register_blueprint(bp)
