"""The quart-trio application: REST API under ``/api/v1``, ``/health`` at the root."""

from __future__ import annotations

import logging
from typing import Any

from quart import Blueprint, jsonify
from quart_schema import document_response
from quart_trio import QuartTrio
from werkzeug.exceptions import HTTPException

from runlater import __version__
from runlater.clock import Clock
from runlater.config import Settings
from runlater.delivery.resolver import Resolver
from runlater.errors import NotFound, StoreError, StoreUnavailable
from runlater.schemas.common import Health
from runlater.store.postgres import Store
from runlater.web import idempotency, openapi
from runlater.web.api import audit, cron, keys, org, tasks
from runlater.web.auth import authenticate
from runlater.web.errors import ApiError, error_response

log = logging.getLogger("runlater.web")

MAX_REQUEST_BYTES = 256 * 1024
RETRY_AFTER_S = "5"


def create_app(
    store: Store, settings: Settings, clock: Clock, resolver: Resolver | None = None
) -> QuartTrio:
    """``resolver``: how URL checks resolve names (tests inject answers; default: the system)."""
    app = QuartTrio("runlater")
    app.config.update(
        RESOLVER=resolver,
        STORE=store,
        SETTINGS=settings,
        CLOCK=clock,
        MAX_CONTENT_LENGTH=MAX_REQUEST_BYTES,
        JSON_SORT_KEYS=False,
    )
    openapi.install(app, __version__)
    app.json.sort_keys = False  # type: ignore[attr-defined]

    api = Blueprint("api", __name__, url_prefix="/api/v1")
    api.before_request(authenticate)
    api.before_request(idempotency.begin)
    api.after_request(idempotency.finish)
    api.teardown_request(idempotency.abandon)
    api.after_request(audit.record)
    api.register_blueprint(tasks.bp)
    api.register_blueprint(org.bp)
    api.register_blueprint(keys.bp)
    api.register_blueprint(cron.bp)
    api.register_blueprint(audit.bp)
    app.register_blueprint(api)

    @app.get("/health")
    @openapi.public
    @document_response(Health, 200)
    @document_response(Health, 503)
    async def health() -> Any:
        """Liveness and database reachability."""
        try:
            await store.ping()
        except StoreError:
            response = jsonify({"status": "error", "database": "unreachable"})
            response.headers["Retry-After"] = RETRY_AFTER_S
            return response, 503
        return jsonify({"status": "ok", "database": "connected"})

    @app.errorhandler(ApiError)
    async def api_error(exc: ApiError) -> Any:
        return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)

    @app.errorhandler(NotFound)
    async def not_found(exc: NotFound) -> Any:
        return error_response(404, "not_found", str(exc) or "not found")

    @app.errorhandler(StoreUnavailable)
    async def unavailable(exc: StoreUnavailable) -> Any:
        log.warning("request failed: database unavailable error=%s", exc)
        return error_response(
            503,
            "unavailable",
            "the database is unavailable, try again",
            headers={"Retry-After": RETRY_AFTER_S},
        )

    @app.errorhandler(HTTPException)
    async def http_error(exc: HTTPException) -> Any:
        status = exc.code or 500
        code = {
            400: "bad_request",
            401: "unauthorized",
            404: "not_found",
            405: "method_not_allowed",
            413: "payload_too_large",
        }.get(status, "bad_request")
        message = "request body is larger than 256 KiB" if status == 413 else exc.description
        return error_response(status, code, message or exc.name)

    @app.errorhandler(Exception)
    async def internal(exc: Exception) -> Any:
        log.error("unhandled error in request", exc_info=exc)
        return error_response(500, "internal_error", "internal error")

    return app
