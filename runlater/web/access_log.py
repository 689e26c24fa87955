"""One access log line per request, and its request id.

``X-Request-Id`` from the client is kept when it looks like an id (at most 128 letters, digits
and ``._:-``), else one is made; the response echoes it, and the line carries it, so a user's
report and the server's log meet. Installed first, so the line is written last: its status is
the one sent, after the transaction hook may have turned a failed commit into 503.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from quart import Quart, Response, g, request

from runlater import metrics

log = logging.getLogger("runlater.access")

HEADER = "X-Request-Id"
_VALID_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def request_id(incoming: str | None) -> str:
    if incoming is not None and _VALID_ID.fullmatch(incoming):
        return incoming
    return uuid.uuid4().hex


def install(app: Quart) -> None:
    @app.before_request
    async def start() -> None:
        g.started = time.perf_counter()
        g.request_id = request_id(request.headers.get(HEADER))

    @app.after_request
    async def line(response: Response) -> Response:
        started: Any = getattr(g, "started", None)
        rid = getattr(g, "request_id", None) or request_id(None)
        response.headers[HEADER] = rid
        route = request.url_rule.rule if request.url_rule is not None else "unmatched"
        metrics.API_REQUESTS.labels(route, request.method, str(response.status_code)).inc()
        ms = round((time.perf_counter() - started) * 1000, 1) if started is not None else None
        log.log(
            logging.WARNING if response.status_code >= 500 else logging.INFO,
            "request",
            extra={
                "fields": {
                    "method": request.method,
                    "path": request.path,
                    "status": response.status_code,
                    "ms": ms,
                    "request_id": rid,
                }
            },
        )
        return response
