"""The quart-trio application: REST API under ``/api/v1``; ``/health`` (liveness) and
``/health/ready`` (readiness) at the root."""

from __future__ import annotations

import logging
from typing import Any, cast

import trio
from quart import Blueprint, Response, has_request_context, jsonify, request
from quart_schema import document_response, hide
from quart_trio.wrappers import TrioRequest
from werkzeug.exceptions import HTTPException

from runlater import __version__, metrics
from runlater.clock import Clock
from runlater.config import Settings
from runlater.delivery.resolver import Resolver
from runlater.domain.inbound import InboundService
from runlater.domain.monitor_service import MonitorService
from runlater.domain.notification_service import NotificationService
from runlater.domain.people import PeopleService
from runlater.domain.service import TaskService
from runlater.domain.status_pages import StatusPageService
from runlater.domain.uptime import UptimeService
from runlater.domain.urls import UrlPolicy
from runlater.errors import (
    InvalidInput,
    LimitExceeded,
    NotFound,
    StoreUnavailable,
    TransientConflict,
)
from runlater.events import Hub
from runlater.schemas.common import Health, Readiness
from runlater.store.ports import WebStore
from runlater.store.transaction import KeyInProgress, KeyMismatch, KeyReplay
from runlater.web import access_log, auth, live, openapi, pages, qstash, ratelimit, transaction
from runlater.web.api import (
    audit,
    batch,
    cron,
    dlq,
    endpoints,
    keys,
    monitors,
    notifications,
    org,
    queues,
    status_page,
    sync,
    tasks,
    uptime,
)
from runlater.web.context import CONFIG_KEY, Services
from runlater.web.errors import ApiError, error_response, input_status
from runlater.web.field_names import details_as_sent
from runlater.web.keycache import ApiKeyCache
from runlater.web.public import inbound, ping, status
from runlater.web.rights import RightsWatch

log = logging.getLogger("runlater.web")

MAX_REQUEST_BYTES = 256 * 1024
LARGE_REQUEST_BYTES = 8 * 1024 * 1024
# (method, path) of the routes whose requests may be up to 8 MiB (api.md).
LARGE_REQUEST_ROUTES = frozenset({("POST", "/api/v1/tasks/batch"), ("PUT", "/api/v1/sync")})
RETRY_AFTER_S = "5"
# /health/ready answers within a second: the probe gets this, the rest is HTTP.
READY_DEADLINE_S = 0.8
# /metrics answers even while the database does not: the queue depth keeps its last value.
METRICS_DB_DEADLINE_S = 1.0


class SizedRequest(TrioRequest):
    """A request whose body limit depends on its route. Quart enforces the limit in the body
    object it makes together with the request, before any hook runs (``authenticate`` reads
    the body first), so a ``before_request`` hook is too late to raise it: it is chosen here."""

    def __init__(self, method: str, scheme: str, path: str, *args: Any, **kwargs: Any) -> None:
        if (method, path) in LARGE_REQUEST_ROUTES:
            kwargs["max_content_length"] = LARGE_REQUEST_BYTES
        elif path.startswith("/ping/"):
            kwargs["max_content_length"] = ping.MAX_PING_REQUEST_BYTES
        elif path.startswith("/in/"):
            kwargs["max_content_length"] = inbound.MAX_INBOUND_BYTES
        super().__init__(method, scheme, path, *args, **kwargs)
        self.max_content_length = kwargs.get("max_content_length")


def _size(limit: int) -> str:
    return f"{limit // 1048576} MiB" if limit % 1048576 == 0 else f"{limit // 1024} KiB"


def create_app(
    store: WebStore,
    settings: Settings,
    clock: Clock,
    resolver: Resolver | None = None,
    *,
    hub: Hub | None = None,
) -> transaction.RunlaterApp:
    """``resolver``: how URL checks resolve names (tests inject answers; default: the system).
    ``hub``: the node's live events (a node passes its own; default: one of the app's own)."""
    # No app-wide static route: the pages serve their own assets (web/pages/static).
    app = transaction.RunlaterApp("runlater", static_folder=None)
    urls = UrlPolicy(allow_private=settings.allow_private_targets, resolver=resolver)
    # Rate limits (per client address before authentication, per key after it) and the
    # key cache read time from the same source (``ratelimit.monotonic_seconds``).
    seconds = ratelimit.monotonic_seconds(clock)
    app.config.update(MAX_CONTENT_LENGTH=MAX_REQUEST_BYTES, JSON_SORT_KEYS=False)
    app.config[CONFIG_KEY] = Services(
        store=store,
        settings=settings,
        clock=clock,
        tasks=TaskService(store, urls, clock),
        monitors=MonitorService(store, urls, clock),
        uptime=UptimeService(store, urls, clock),
        status_pages=StatusPageService(store),
        notifications=NotificationService(
            store, urls, clock, settings.public_base_url, settings.mail_domain
        ),
        people=PeopleService(store, settings),
        api_keys=ApiKeyCache(seconds),
        hub=hub if hub is not None else Hub(),
        rights=RightsWatch(),
        inbound=InboundService(store, urls, clock),
    )
    app.request_class = SizedRequest
    access_log.install(app)  # first: its line is written after every other hook has run
    openapi.install(app, __version__)
    app.json.sort_keys = False  # type: ignore[attr-defined]

    @app.before_request
    async def read_body() -> None:
        # Every request's body is read before any answer, also when routing refuses it
        # (404/405, which skip the API's hooks): hypercorn leaves a keep-alive connection
        # hanging when a response completes before the request body has arrived (found by
        # the fuzzer: the next request on that connection got no answer).
        await request.get_data(cache=True)

    api = Blueprint("api", __name__, url_prefix="/api/v1")
    limits = ratelimit.RateLimits(settings, seconds)
    api.before_request(limits.check_client)
    api.before_request(auth.authenticate)
    api.before_request(limits.check_key)
    # One transaction per mutating call: its changes, audit entry and Idempotency-Key
    # answer commit together in ``transaction.end``, the app's last after_request hook.
    api.before_request(transaction.begin)
    api.after_request(auth.forget_on_revoke)
    api.after_request(audit.record)
    app.after_request(transaction.end)
    api.register_blueprint(batch.bp)
    api.register_blueprint(tasks.bp)
    api.register_blueprint(sync.bp)
    api.register_blueprint(org.bp)
    api.register_blueprint(keys.bp)
    api.register_blueprint(cron.bp)
    api.register_blueprint(audit.bp)
    api.register_blueprint(queues.bp)
    api.register_blueprint(monitors.bp)
    api.register_blueprint(notifications.bp)
    api.register_blueprint(uptime.bp)
    api.register_blueprint(status_page.bp)
    api.register_blueprint(endpoints.bp)
    api.register_blueprint(dlq.bp)
    app.register_blueprint(api)
    qstash.install(app, limits)  # /v2: the QStash-compatible API
    pages.install(app, seconds)  # the dashboard, at the root
    live.install(app)  # websockets: /api/v1/live and /live
    ping.install(app, seconds)  # /ping/{token}: heartbeat monitors' pings
    inbound.install(app)  # /in/{slug}: inbound endpoints' public URLs
    status.install(app)  # /s/{slug}, /badge/{token}/*.svg, /status

    @app.get("/health")
    @openapi.public
    @document_response(Health, 200)
    async def health() -> Any:
        """Liveness: the process answers. Never waits for the database; ``database`` is what
        the last readiness probe found (``/health/ready`` asks it now)."""
        last = store.last_ready
        database = "unknown" if last is None else "connected" if last else "unreachable"
        return jsonify({"status": "ok", "database": database})

    @app.get("/health/ready")
    @openapi.public
    @document_response(Readiness, 200)
    @document_response(Readiness, 503)
    async def ready() -> Any:
        """Readiness: the database answers within the deadline (on a connection of its own,
        never queued behind API traffic), else 503 — within a second either way."""
        if await store.ready(READY_DEADLINE_S):
            return jsonify({"status": "ok", "database": "connected"})
        response = jsonify({"status": "error", "database": "unreachable"})
        response.headers["Retry-After"] = RETRY_AFTER_S
        return response, 503

    async def _body() -> bytes:
        # Websocket requests have no body (and no request context).
        if not has_request_context():
            return b""
        return cast(bytes, await request.get_data(cache=True, as_text=False))

    @app.get("/metrics")
    @hide  # text for Prometheus, not part of the JSON API's spec
    async def metrics_text() -> Any:
        """Prometheus text format: executions by outcome, queue depth by status, delivery
        duration and scheduling lateness histograms, actor restarts, leader status, database
        pool use, API requests by route and status."""
        with trio.move_on_after(METRICS_DB_DEADLINE_S):
            try:
                metrics.set_queue_depth(await store.execution_counts())
            except (StoreUnavailable, TransientConflict) as exc:
                log.warning("metrics: queue depth not read error=%s", exc)
        body, content_type = metrics.exposition()
        return Response(body, content_type=content_type)

    @app.errorhandler(ApiError)
    async def api_error(exc: ApiError) -> Any:
        details = details_as_sent(exc.details, await _body())
        return error_response(exc.status, exc.code, exc.message, details, exc.headers)

    @app.errorhandler(InvalidInput)
    async def invalid_input(exc: InvalidInput) -> Any:
        details = details_as_sent(exc.details, await _body())
        return error_response(input_status(exc), exc.code, exc.message, details)

    @app.errorhandler(LimitExceeded)
    async def limit_exceeded(exc: LimitExceeded) -> Any:
        details = details_as_sent({exc.field: [exc.message]}, await _body())
        return error_response(422, "limit_exceeded", exc.message, details)

    @app.errorhandler(NotFound)
    async def not_found(exc: NotFound) -> Any:
        return error_response(404, "not_found", str(exc) or "not found")

    @app.errorhandler(StoreUnavailable)
    async def unavailable(exc: StoreUnavailable) -> Any:
        log.warning("request failed: database unavailable error=%s", exc)
        return transaction.unavailable()

    @app.errorhandler(TransientConflict)
    async def busy(exc: TransientConflict) -> Any:
        # A row this request needs is locked by another transaction for longer than the
        # database's lock_timeout (or a deadlock was broken): nothing was changed.
        log.warning("request failed: row busy error=%s", exc)
        return error_response(
            503,
            "unavailable",
            "the resource is being changed by another request; try again",
            headers={"Retry-After": "1"},
        )

    @app.errorhandler(KeyInProgress)
    @app.errorhandler(KeyMismatch)
    @app.errorhandler(KeyReplay)
    async def idempotency_key(exc: KeyInProgress | KeyMismatch | KeyReplay) -> Any:
        return transaction.key_error_response(exc)

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
        # A websocket upgrade has no request context (and no body): same answer, no size.
        limit = (request.max_content_length if has_request_context() else None) or (
            MAX_REQUEST_BYTES
        )
        message = (
            f"request body is larger than {_size(limit)}" if status == 413 else exc.description
        )
        return error_response(status, code, message or exc.name)

    @app.errorhandler(Exception)
    async def internal(exc: Exception) -> Any:
        log.error("unhandled error in request", exc_info=exc)
        return error_response(500, "internal_error", "internal error")

    return app
