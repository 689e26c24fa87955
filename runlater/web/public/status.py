"""The public status pages: an organization's ``/s/{slug}`` (and its JSON), badges at
``/badge/{token}/status.svg`` and ``/uptime.svg``, and Runlater's own ``/status``.

No credentials. Answers are cached briefly — in the process (``CACHE_S``) and by clients and
proxies (``Cache-Control``) — so a popular page costs a few queries per node and ten seconds,
whatever its traffic. The page reads its JSON again every ``POLL_S`` seconds (``status.js``):
a monitor that goes down shows without a reload.
"""

from __future__ import annotations

import time
from typing import Any

from quart import Blueprint, Response, jsonify, render_template
from quart_schema import hide

from runlater.domain.status_pages import public_view, status_badge, uptime_badge
from runlater.errors import StoreUnavailable, TransientConflict
from runlater.web.context import services

CACHE_S = 5.0
POLL_S = 10
BADGE_MAX_AGE_S = 30
LATENESS_BOUNDS_MS = (100, 500, 1000, 5000, 30000, 60000, None)


class TtlCache:
    """Answers by key for ``CACHE_S`` seconds (bounded: the oldest go first)."""

    def __init__(self, max_entries: int = 10_000) -> None:
        self.max_entries = max_entries
        self._entries: dict[str, tuple[float, Any]] = {}

    def get(self, key: str) -> Any:
        found = self._entries.get(key)
        if found is None or found[0] < time.monotonic():
            return None
        return found[1]

    def put(self, key: str, value: Any) -> None:
        if len(self._entries) >= self.max_entries:
            self._entries.pop(next(iter(self._entries)))
        self._entries[key] = (time.monotonic() + CACHE_S, value)


def _percentile(row: list[Any], share: float) -> int | None:
    """The bucket bound under which ``share`` of a day's starts fall (ms), from its histogram."""
    started, buckets, max_ms = row[1], row[2:9], row[9]
    if not started:
        return None
    seen = 0
    for bound, count in zip(LATENESS_BOUNDS_MS, buckets, strict=True):
        seen += count
        if seen >= share * started:
            return bound if bound is not None else int(max_ms)
    return int(max_ms)


def install(app: Any) -> None:
    bp = Blueprint("public_status", __name__)
    pages = TtlCache()

    async def view(slug: str) -> Any:
        cached = pages.get(slug)
        if cached is None:
            svc = services()
            cached = await public_view(svc.store, slug, svc.clock.now()) or False
            pages.put(slug, cached)
        return cached or None

    @bp.get("/s/<slug>")
    @hide
    async def status_page(slug: str) -> Any:
        page = await view(slug)
        if page is None:
            html = await render_template("public_missing.html")
            return Response(html, status=404, content_type="text/html; charset=utf-8")
        html = await render_template("status_page.html", page=page, slug=slug, poll_s=POLL_S)
        response = Response(html, content_type="text/html; charset=utf-8")
        response.headers["Cache-Control"] = f"public, max-age={int(CACHE_S)}"
        return response

    @bp.get("/s/<slug>/status.json")
    @hide
    async def status_json(slug: str) -> Any:
        page = await view(slug)
        if page is None:
            return jsonify({"error": {"code": "not_found", "message": "no such status page"}}), 404
        response = jsonify(page)
        response.headers["Cache-Control"] = f"public, max-age={int(CACHE_S)}"
        return response

    async def badge(token: str, render: Any) -> Response:
        svc = services()
        row = await svc.store.badge(token, svc.clock.now()) if len(token) <= 100 else None
        if row is None:
            return Response("not found", status=404, content_type="text/plain")
        response = Response(render(row), content_type="image/svg+xml; charset=utf-8")
        response.headers["Cache-Control"] = f"public, max-age={BADGE_MAX_AGE_S}"
        return response

    @bp.get("/badge/<token>/status.svg")
    @hide
    async def status_svg(token: str) -> Response:
        return await badge(token, status_badge)

    @bp.get("/badge/<token>/uptime.svg")
    @hide
    async def uptime_svg(token: str) -> Response:
        return await badge(token, uptime_badge)

    async def system() -> dict[str, Any]:
        cached = pages.get(" system")
        if cached is not None:
            return dict(cached)
        svc = services()
        now = svc.clock.now()
        components = {"api": "operational"}
        try:
            row = await svc.store.system_status()
        except (StoreUnavailable, TransientConflict):
            components.update(database="down", scheduler="unknown", workers="unknown")
            return {"components": components, "lateness": [], "checked_at": now.isoformat()}
        components["database"] = "operational"
        leader = row["leader_until"]
        components["scheduler"] = "operational" if leader and leader > now else "down"
        components["workers"] = "operational" if row["backlog"] == 0 else "degraded"
        lateness = [
            {
                "day": str(day[0]),
                "started": day[1],
                "p50_ms": _percentile(day, 0.5),
                "p95_ms": _percentile(day, 0.95),
                "max_ms": day[9],
            }
            for day in row["lateness"]
        ]
        found = {
            "components": components,
            "backlog": row["backlog"],
            "lateness": lateness,
            "checked_at": now.isoformat().replace("+00:00", "Z"),
        }
        pages.put(" system", found)
        return found

    @bp.get("/status")
    @hide
    async def runlater_status() -> Any:
        html = await render_template("system_status.html", status=await system())
        response = Response(html, content_type="text/html; charset=utf-8")
        response.headers["Cache-Control"] = f"public, max-age={int(CACHE_S)}"
        return response

    @bp.get("/status.json")
    @hide
    async def runlater_status_json() -> Any:
        response = jsonify(await system())
        response.headers["Cache-Control"] = f"public, max-age={int(CACHE_S)}"
        return response

    app.register_blueprint(bp)
