"""``/in/{slug}``: the public URL of an inbound endpoint (no API key).

Any of GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS, with anything after the slug
(``/in/{slug}/github/push?x=1``): the method, that path suffix, the query, the headers, the
raw body (byte-exact, any content type, at most ``MAX_INBOUND_BYTES``) and the sender's
address are stored as an event, and ``200 {"id", "status": "received"}`` is answered at once;
the forwards are one-time tasks the workers send. Errors have the API's shape: ``404
not_found`` (no endpoint has the slug), ``410 endpoint_disabled``, ``401 unauthorized`` (the
signature check failed: the event is kept as rejected, not forwarded), ``413
payload_too_large`` (nothing stored; the body is never buffered past the limit),
``422 limit_exceeded`` (a hard monthly limit: kept as rejected).
"""

from __future__ import annotations

from typing import Any, cast

from quart import Blueprint, Response, jsonify, request
from quart_schema import hide

from runlater.domain.inbound import client_ip, parse_trusted_proxies, received_headers
from runlater.domain.tasks import is_text
from runlater.store.inbound import InboundRequest
from runlater.web.context import services
from runlater.web.errors import error_response

MAX_INBOUND_BYTES = 1024 * 1024  # a longer body is answered 413 (app.SizedRequest)
INBOUND_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


def _text(raw: str) -> str:
    """Text that Postgres can store (no NUL)."""
    return raw.replace("\x00", "\ufffd")


def sent_headers(scope: Any) -> list[tuple[str, str]]:
    """The headers as the sender sent them: the ASGI scope's, not ``request.headers`` (quart
    adds a ``Remote-Addr`` of its own there, which no sender sent)."""
    return [(n.decode("latin-1"), v.decode("latin-1")) for n, v in scope.get("headers", ())]


def install(app: Any) -> None:
    """Register ``/in/{slug}`` on ``app``."""
    trusted = parse_trusted_proxies(app.config["RUNLATER_SERVICES"].settings.trusted_proxies)
    bp = Blueprint("inbound", __name__)

    async def receive(slug: str, rest: str | None) -> Response:
        svc = services()
        body = cast(bytes, await request.get_data(cache=True, as_text=False))
        headers = received_headers(sent_headers(request.scope))
        answer = await svc.inbound.receive(
            InboundRequest(
                slug=slug,
                method=request.method,
                path=_text("/" + rest) if rest is not None else "",
                query=_text(request.query_string.decode("latin-1")),
                headers=headers,
                body=body,
                body_is_text=is_text(body),
                source_ip=client_ip(
                    request.remote_addr, request.headers.getlist("X-Forwarded-For"), trusted
                ),
                at=svc.clock.now(),
            )
        )
        if answer.outcome == "received":
            return _no_store(jsonify({"id": str(answer.event_id), "status": "received"}))
        if answer.outcome == "not_found":
            return _no_store(error_response(404, "not_found", "endpoint not found"))
        if answer.outcome == "disabled":
            return _no_store(error_response(410, "endpoint_disabled", "endpoint is disabled"))
        if answer.outcome == "limit_exceeded":
            message = answer.reason or "monthly execution limit reached"
            return _no_store(error_response(422, "limit_exceeded", message))
        return _no_store(
            error_response(
                401,
                "unauthorized",
                "signature check failed; the request was recorded as rejected",
                {"signature": [answer.reason or "invalid signature"]},
            )
        )

    @bp.route("/in/<slug>", methods=INBOUND_METHODS, provide_automatic_options=False)
    @hide
    async def inbound(slug: str) -> Response:
        return await receive(slug, None)

    @bp.route("/in/<slug>/<path:rest>", methods=INBOUND_METHODS, provide_automatic_options=False)
    @hide
    async def inbound_path(slug: str, rest: str) -> Response:
        return await receive(slug, rest)

    app.register_blueprint(bp)
